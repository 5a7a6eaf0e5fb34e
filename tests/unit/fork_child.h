/*
 * Running a piece of a test in a child process, so that a signal (SIGBUS from a mapped file,
 * an abort) is a reported failure instead of the end of the test. Include after <cmocka.h>.
 */
#ifndef JOBQ_TEST_FORK_CHILD_H
#define JOBQ_TEST_FORK_CHILD_H

#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

/* fork(); the child dies of the signals that cmocka otherwise catches to report a crash. */
static pid_t
fork_child(void) {
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		signal(SIGBUS, SIG_DFL);
		signal(SIGSEGV, SIG_DFL);
		signal(SIGABRT, SIG_DFL);
	}
	return pid;
}

/* waitpid: the child's exit status, or 128 + the signal that ended it. */
static int
wait_child(pid_t pid) {
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

#endif
