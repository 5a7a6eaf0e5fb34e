/* The library's version at run time: the one it was built as, whatever headers the caller saw. */
#include "jobq/common.h"

const char *
jobq_version(void) {
	return JOBQ_VERSION_STRING;
}
