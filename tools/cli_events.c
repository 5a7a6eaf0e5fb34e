/* jobq command — events (placeholder while being written). */
#include "cli.h"

int
cli_cmd_events(int argc, char **argv) {
	(void)argc;
	(void)argv;
	return cli_fail(CLI_EXIT_FAILED, "not implemented yet");
}
