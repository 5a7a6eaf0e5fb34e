# bash completion for jobq (installed into bash-completion's completions directory).
# Verbs and their options come from `jobq --help` and `jobq VERB --help`, so they never
# drift from the program; queue names come from `jobq queues` on the store in effect.
_jobq() {
	local cur prev words cword verb i
	if declare -F _init_completion >/dev/null 2>&1; then
		_init_completion || return
	else
		cur=${COMP_WORDS[COMP_CWORD]}
		prev=${COMP_WORDS[COMP_CWORD - 1]}
		words=("${COMP_WORDS[@]}")
		cword=$COMP_CWORD
	fi
	local url_args=()
	for ((i = 1; i < cword; i++)); do
		case ${words[i]} in
		-u | --url) url_args=(-u "${words[i + 1]}") ;;
		-*) ;;
		*)
			if [ -z "${verb:-}" ] && [ "${words[i - 1]}" != -u ] && [ "${words[i - 1]}" != --url ]; then
				verb=${words[i]}
			fi
			;;
		esac
	done
	case $prev in
	-u | --url)
		COMPREPLY=($(compgen -W "mem:// lmdb: redis:// redis+unix://" -- "$cur"))
		return
		;;
	--log)
		COMPREPLY=($(compgen -W "text json" -- "$cur"))
		return
		;;
	esac
	if [ -z "${verb:-}" ]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "-u --url --json -q --quiet -h --help --version" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$(jobq --help 2>/dev/null | sed -n '/^Verbs:/,/^$/s/^  \([a-z-]*\) .*/\1/p') help" -- "$cur"))
		fi
		return
	fi
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$(jobq "$verb" --help 2>/dev/null | grep -o -- '--[a-z-]*' | sort -u) --json --help" -- "$cur"))
		return
	fi
	case $verb in
	help) COMPREPLY=($(compgen -W "$(jobq --help 2>/dev/null | sed -n '/^Verbs:/,/^$/s/^  \([a-z-]*\) .*/\1/p')" -- "$cur")) ;;
	bench | demo | check | queues | top | health) ;;
	flow) COMPREPLY=($(compgen -f -- "$cur")) ;; # a JSON file
	*)
		# the first word after the verb is a queue; list/clean take a state next
		local n=0
		for ((i = 1; i < cword; i++)); do
			[ "${words[i]}" = "$verb" ] && n=$((cword - i))
		done
		if [ "$n" = 1 ]; then
			COMPREPLY=($(compgen -W "$(jobq "${url_args[@]}" queues 2>/dev/null | tail -n +2 | cut -f1)" -- "$cur"))
		elif [ "$n" = 2 ] && { [ "$verb" = list ] || [ "$verb" = clean ]; }; then
			COMPREPLY=($(compgen -W "waiting prioritized delayed active completed failed waiting-children" -- "$cur"))
		elif [ "$n" = 2 ] && [ "$verb" = unschedule ]; then
			# the queue's scheduler ids
			local qn=${words[cword - 1]}
			COMPREPLY=($(compgen -W "$(jobq "${url_args[@]}" schedulers "$qn" 2>/dev/null | tail -n +2 | cut -f1)" -- "$cur"))
		fi
		;;
	esac
}
complete -F _jobq jobq
