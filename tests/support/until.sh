# Sourced by the shell tests. until_true SECONDS CMD...: polls a condition (every 20 ms) up
# to a limit of SECONDS times $MULT (JOBQ_TEST_TIMEOUT_MULTIPLIER); returns 1 if it never held.
until_true() {
	local limit=$(($1 * ${MULT:-1} * 50)) i=0
	shift
	while [ $i -lt $limit ]; do
		if "$@"; then
			return 0
		fi
		sleep 0.02
		i=$((i + 1))
	done
	return 1
}
