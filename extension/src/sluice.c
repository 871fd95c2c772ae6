/*
 * sluice.c
 *     Entry point of the sluice C module.
 *
 * The module holds the parts of Sluice that SQL does poorly or slowly; each
 * lives in its own file under src/. This file only marks the library as a
 * PostgreSQL module.
 */
#include "postgres.h"

#include "fmgr.h"

PG_MODULE_MAGIC;
