/* jobq command — bench and demo (placeholder while being written). */
#include "cli.h"

int
cli_cmd_bench(int argc, char **argv) {
	(void)argc;
	(void)argv;
	return cli_fail(CLI_EXIT_FAILED, "not implemented yet");
}

int
cli_cmd_demo(int argc, char **argv) {
	(void)argc;
	(void)argv;
	return cli_fail(CLI_EXIT_FAILED, "not implemented yet");
}
