// Anchor translation unit for core/error.h (header-only today).
#include "basin/core/error.h"
