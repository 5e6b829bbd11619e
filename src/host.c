#include "internal.h"
typedef int ps_host_placeholder;
