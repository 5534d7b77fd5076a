/*-------------------------------------------------------------------------
 *
 * gpemu.c
 *		Test-only PostgreSQL 15 module that makes a plain server answer like
 *		one instance (coordinator or primary segment) of a Greenplum 6 or 7
 *		cluster, as far as the exporter can see:
 *
 *		- settings gp_contentid / gp_dbid and the per-connection options
 *		  gp_session_role (GP6) / gp_role, gp_session_id and gp_is_writer;
 *		- the admission rules of a primary segment (utility mode required,
 *		  the last slot kept for the FTS prober) and the family-specific
 *		  refusal of the other family's utility-mode option;
 *		- a per-backend record of the declared gp_session_id / gp_is_writer
 *		  in shared memory, read by the SQL functions gpemu_sess_id() and
 *		  gpemu_is_writer() on which the replacement views in sql/gp6.sql and
 *		  sql/gp7.sql are built.
 *
 *		It must be loaded through shared_preload_libraries.  The contract is
 *		described in docs/emulation.md.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "fmgr.h"
#include "libpq/auth.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "replication/walsender.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

PG_FUNCTION_INFO_V1(gpemu_sess_id);
PG_FUNCTION_INFO_V1(gpemu_is_writer);

/* Connection slots GP6+ segments keep free for the FTS prober. */
#define GPEMU_FTS_RESERVED_SLOTS 1

/* Value of gpemu.family. */
typedef enum GpemuFamily
{
	GPEMU_GP6,
	GPEMU_GP7
} GpemuFamily;

static const struct config_enum_entry family_options[] = {
	{"gp6", GPEMU_GP6, false},
	{"gp7", GPEMU_GP7, false},
	{NULL, 0, false}
};

/* Values of gp_session_role (GP6) and gp_role. */
typedef enum GpemuRole
{
	GPEMU_ROLE_DISPATCH,
	GPEMU_ROLE_UTILITY,
	GPEMU_ROLE_EXECUTE
} GpemuRole;

static const struct config_enum_entry role_options[] = {
	{"dispatch", GPEMU_ROLE_DISPATCH, false},
	{"utility", GPEMU_ROLE_UTILITY, false},
	{"execute", GPEMU_ROLE_EXECUTE, false},
	{NULL, 0, false}
};

/* Server settings. */
static int	gpemu_family = GPEMU_GP6;
static int	gpemu_contentid = -1;
static int	gpemu_dbid = 1;
static int	gp_contentid = -1;
static int	gp_dbid = 1;
static char *gp_server_version = NULL;
static int	gpemu_catalog_delay = 0;	/* ms per gpemu_sess_id() call */
static int	gpemu_cached_segworkers = 5;
static int	gp_cached_segworkers_threshold = 5;

/* Per-connection options. */
static int	gp_session_role = GPEMU_ROLE_DISPATCH;	/* GP6 only */
static int	gp_role = GPEMU_ROLE_DISPATCH;
static int	gp_session_id = -1;
static bool gp_is_writer = false;

/*
 * What one client backend declared at connection time.  pid = 0 marks a
 * free slot.
 */
typedef struct GpemuBackend
{
	int			pid;
	int			sess_id;
	bool		is_writer;
} GpemuBackend;

typedef struct GpemuShared
{
	LWLock	   *lock;			/* protects slots[] */
	int			nslots;
	GpemuBackend slots[FLEXIBLE_ARRAY_MEMBER];	/* indexed by BackendId */
} GpemuShared;

static GpemuShared *gpemu_shared = NULL;

/* The connection options that matter for admission, as sent by the client. */
typedef struct GpemuStartupOptions
{
	bool		has_session_role;
	const char *session_role;
	bool		has_role;
	const char *role;
	const char *session_id;
	const char *is_writer;
} GpemuStartupOptions;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static ClientAuthentication_hook_type prev_client_auth_hook = NULL;

static Size
gpemu_shmem_size(void)
{
	return add_size(offsetof(GpemuShared, slots),
					mul_size(MaxBackends + 1, sizeof(GpemuBackend)));
}

static void
gpemu_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();

	RequestAddinShmemSpace(gpemu_shmem_size());
	RequestNamedLWLockTranche("gpemu", 1);
}

static void
gpemu_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	gpemu_shared = ShmemInitStruct("gpemu", gpemu_shmem_size(), &found);
	if (!found)
	{
		memset(gpemu_shared, 0, gpemu_shmem_size());
		gpemu_shared->lock = &(GetNamedLWLockTranche("gpemu"))->lock;
		gpemu_shared->nslots = MaxBackends + 1;
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Remember one "name=value" startup option if it is one of ours. */
static void
collect_option(GpemuStartupOptions *opts, const char *name, const char *value)
{
	if (pg_strcasecmp(name, "gp_session_role") == 0)
	{
		opts->has_session_role = true;
		opts->session_role = value;
	}
	else if (pg_strcasecmp(name, "gp_role") == 0)
	{
		opts->has_role = true;
		opts->role = value;
	}
	else if (pg_strcasecmp(name, "gp_session_id") == 0)
		opts->session_id = value;
	else if (pg_strcasecmp(name, "gp_is_writer") == 0)
		opts->is_writer = value;
}

/*
 * The client authentication hook runs before the startup options are
 * applied to the GUCs (process_startup_options() comes later in
 * InitPostgres), so read them from the Port the way PostgreSQL will:
 * first the "options" string (split like pg_split_opts(), "-c name=value",
 * "-cname=value" and "--name=value"), then the other startup packet
 * parameters.  A later occurrence wins, as it does when PostgreSQL applies
 * them.
 */
static void
parse_startup_options(Port *port, GpemuStartupOptions *opts)
{
	memset(opts, 0, sizeof(*opts));

	if (port->cmdline_options != NULL)
	{
		int			maxac = 2 + (strlen(port->cmdline_options) + 1) / 2;
		char	  **av = palloc(maxac * sizeof(char *));
		int			ac = 0;

		pg_split_opts(av, &ac, port->cmdline_options);
		for (int i = 0; i < ac; i++)
		{
			const char *setting = NULL;

			if (strcmp(av[i], "-c") == 0)
			{
				if (i + 1 < ac)
					setting = av[++i];
			}
			else if (strncmp(av[i], "-c", 2) == 0)
				setting = av[i] + 2;
			else if (strncmp(av[i], "--", 2) == 0 && av[i][2] != '\0')
				setting = av[i] + 2;

			if (setting != NULL)
			{
				char	   *name;
				char	   *value;

				/* ParseLongOption mallocs and maps '-' to '_' in the name */
				ParseLongOption(setting, &name, &value);
				collect_option(opts, name, value ? pstrdup(value) : NULL);
				free(name);
				if (value)
					free(value);
			}
		}
	}

	for (int i = 0; i + 1 < list_length(port->guc_options); i += 2)
		collect_option(opts,
					   (const char *) list_nth(port->guc_options, i),
					   (const char *) list_nth(port->guc_options, i + 1));
}

static bool
role_is(const char *value, const char *role)
{
	return value != NULL && pg_strcasecmp(value, role) == 0;
}

static void
gpemu_backend_exit(int code, Datum arg)
{
	GpemuBackend *slot = &gpemu_shared->slots[DatumGetInt32(arg)];

	LWLockAcquire(gpemu_shared->lock, LW_EXCLUSIVE);
	if (slot->pid == MyProcPid)
		memset(slot, 0, sizeof(*slot));
	LWLockRelease(gpemu_shared->lock);
}

static void
register_backend(const GpemuStartupOptions *opts)
{
	GpemuBackend *slot;
	int			sess_id = -1;
	bool		is_writer = false;

	if (gpemu_shared == NULL || MyBackendId <= 0 ||
		MyBackendId >= gpemu_shared->nslots)
		return;

	/*
	 * Invalid values are ignored here: PostgreSQL rejects them a moment
	 * later when it applies the startup options.
	 */
	if (opts->session_id != NULL &&
		!parse_int(opts->session_id, &sess_id, 0, NULL))
		sess_id = -1;
	if (opts->is_writer != NULL &&
		!parse_bool(opts->is_writer, &is_writer))
		is_writer = false;

	slot = &gpemu_shared->slots[MyBackendId];
	LWLockAcquire(gpemu_shared->lock, LW_EXCLUSIVE);
	slot->pid = MyProcPid;
	slot->sess_id = sess_id;
	slot->is_writer = is_writer;
	LWLockRelease(gpemu_shared->lock);

	/* Also runs when PostgreSQL itself rejects the connection later on. */
	before_shmem_exit(gpemu_backend_exit, Int32GetDatum(MyBackendId));
}

static void
gpemu_client_auth(Port *port, int status)
{
	GpemuStartupOptions opts;
	const char *role_value;

	if (prev_client_auth_hook)
		prev_client_auth_hook(port, status);

	/* Failed authentication is reported by PostgreSQL right after this. */
	if (status != STATUS_OK)
		return;

	/* Walsenders (mirrors, pg_basebackup) are not subject to these rules. */
	if (am_walsender)
		return;

	parse_startup_options(port, &opts);

	if (gpemu_family == GPEMU_GP6)
	{
		/* What Greenplum 6 answers to the GP7 utility-mode option. */
		if (opts.has_role)
			ereport(FATAL,
					(errcode(ERRCODE_CANNOT_CONNECT_NOW),
					 errmsg("System was started in master-only utility mode - only utility mode connections are allowed")));
		role_value = opts.session_role;
	}
	else
	{
		/*
		 * gp_session_role is not defined on GP7, so PostgreSQL would refuse
		 * it anyway, but only after the segment check below: raise its error
		 * here so that a segment gives the same answer as real GP7.
		 */
		if (opts.has_session_role)
			ereport(FATAL,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("unrecognized configuration parameter \"%s\"",
							"gp_session_role")));
		role_value = opts.role;
	}

	if (gp_contentid >= 0)
	{
		Oid			roleid;

		if (!role_is(role_value, "utility") && !role_is(role_value, "execute"))
			ereport(FATAL,
					(errcode(ERRCODE_CANNOT_CONNECT_NOW),
					 errmsg("connections to primary segments are not allowed"),
					 errdetail("This database instance is running as a primary segment in a Greenplum cluster and does not permit direct connections."),
					 errhint("To force a connection anyway (dangerous!), use utility mode.")));

		/*
		 * GP6+ segments keep the last slot for the FTS prober even against
		 * superusers.  Ordinary roles are stopped earlier by PostgreSQL's own
		 * superuser_reserved_connections check, which runs after this hook.
		 * InitPostgres has a transaction open here, so the catalog lookup is
		 * safe.
		 */
		roleid = get_role_oid(port->user_name, true);
		if (OidIsValid(roleid) && superuser_arg(roleid) &&
			!HaveNFreeProcs(GPEMU_FTS_RESERVED_SLOTS))
			ereport(FATAL,
					(errcode(ERRCODE_TOO_MANY_CONNECTIONS),
					 errmsg("connection limit exceeded for superusers (need at least %d connections reserved for FTS handler)",
							GPEMU_FTS_RESERVED_SLOTS)));
	}

	register_backend(&opts);
}

/* Copy of the record of the backend with this pid; false if there is none. */
static bool
lookup_backend(int pid, GpemuBackend *result)
{
	bool		found = false;

	if (gpemu_shared == NULL || pid <= 0)
		return false;

	LWLockAcquire(gpemu_shared->lock, LW_SHARED);
	for (int i = 1; i < gpemu_shared->nslots; i++)
	{
		if (gpemu_shared->slots[i].pid == pid)
		{
			*result = gpemu_shared->slots[i];
			found = true;
			break;
		}
	}
	LWLockRelease(gpemu_shared->lock);

	return found;
}

/*
 * Sleeps gpemu.catalog_delay ms, waking for interrupts so that
 * statement_timeout and pg_cancel_backend() end the statement at once.
 */
static void
catalog_delay(void)
{
	TimestampTz until;

	if (gpemu_catalog_delay <= 0)
		return;
	until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), gpemu_catalog_delay);
	for (;;)
	{
		long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), until);

		CHECK_FOR_INTERRUPTS();
		if (left <= 0)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 left, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* gpemu_sess_id(pid int4) returns int4: declared gp_session_id, else -1. */
Datum
gpemu_sess_id(PG_FUNCTION_ARGS)
{
	GpemuBackend backend;

	catalog_delay();
	if (lookup_backend(PG_GETARG_INT32(0), &backend))
		PG_RETURN_INT32(backend.sess_id);
	PG_RETURN_INT32(-1);
}

/* gpemu_is_writer(pid int4) returns bool: declared gp_is_writer, else false. */
Datum
gpemu_is_writer(PG_FUNCTION_ARGS)
{
	GpemuBackend backend;

	if (lookup_backend(PG_GETARG_INT32(0), &backend))
		PG_RETURN_BOOL(backend.is_writer);
	PG_RETURN_BOOL(false);
}

/*
 * On GP6 gp_role follows gp_session_role (a utility-mode session shows
 * gp_role = utility), while setting it at connection start is refused.
 */
static const char *
show_gp6_gp_role(void)
{
	return role_options[gp_session_role].name;
}

void
_PG_init(void)
{
	/* PGC_POSTMASTER settings and shared memory need preloading. */
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("gpemu must be loaded via shared_preload_libraries")));

	DefineCustomEnumVariable("gpemu.family",
							 "Greenplum family to emulate (gp6 or gp7).",
							 NULL,
							 &gpemu_family,
							 GPEMU_GP6,
							 family_options,
							 PGC_POSTMASTER,
							 0,
							 NULL, NULL, NULL);

	/*
	 * PostgreSQL reads postgresql.conf (and the postmaster's -c switches)
	 * before it loads shared_preload_libraries, and refuses unknown setting
	 * names without a dot there.  So the instance identity is configured as
	 * gpemu.contentid / gpemu.dbid and exposed under the Greenplum names.
	 */
	DefineCustomIntVariable("gpemu.contentid",
							"Content id to emulate: -1 coordinator, >= 0 primary segment.",
							"Exposed as gp_contentid.",
							&gpemu_contentid,
							-1, -1, INT_MAX,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("gpemu.dbid",
							"dbid to emulate.",
							"Exposed as gp_dbid.",
							&gpemu_dbid,
							1, 0, INT_MAX,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("gpemu.catalog_delay",
							"Milliseconds each gpemu_sess_id() call sleeps.",
							"Makes pg_stat_activity and pg_locks slow, to test the exporter's statement_timeout.",
							&gpemu_catalog_delay,
							0, 0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("gpemu.cached_segworkers_threshold",
							"Value of gp_cached_segworkers_threshold to emulate.",
							"Exposed as gp_cached_segworkers_threshold.",
							&gpemu_cached_segworkers,
							5, 0, INT_MAX,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);
	MarkGUCPrefixReserved("gpemu");

	DefineCustomIntVariable("gp_contentid",
							"Content id of this instance (-1 = coordinator).",
							"Set through gpemu.contentid.",
							&gp_contentid,
							gpemu_contentid, -1, INT_MAX,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("gp_dbid",
							"dbid of this instance.",
							"Set through gpemu.dbid.",
							&gp_dbid,
							gpemu_dbid, 0, INT_MAX,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("gp_cached_segworkers_threshold",
							"Reader gangs a session keeps cached (Greenplum default 5).",
							"Set through gpemu.cached_segworkers_threshold.",
							&gp_cached_segworkers_threshold,
							gpemu_cached_segworkers, 0, INT_MAX,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);
	DefineCustomStringVariable("gp_server_version",
							   "Emulated Greenplum version.",
							   NULL,
							   &gp_server_version,
							   gpemu_family == GPEMU_GP6 ? "6.24.3" : "7.0.0",
							   PGC_INTERNAL,
							   GUC_REPORT | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE,
							   NULL, NULL, NULL);

	if (gpemu_family == GPEMU_GP6)
	{
		DefineCustomEnumVariable("gp_session_role",
								 "Role of this session: dispatch, utility or execute.",
								 NULL,
								 &gp_session_role,
								 GPEMU_ROLE_DISPATCH,
								 role_options,
								 PGC_BACKEND,
								 0,
								 NULL, NULL, NULL);
		DefineCustomEnumVariable("gp_role",
								 "Role of this session (follows gp_session_role).",
								 NULL,
								 &gp_role,
								 GPEMU_ROLE_DISPATCH,
								 role_options,
								 PGC_BACKEND,
								 0,
								 NULL, NULL, show_gp6_gp_role);
	}
	else
		DefineCustomEnumVariable("gp_role",
								 "Role of this session: dispatch, utility or execute.",
								 NULL,
								 &gp_role,
								 GPEMU_ROLE_DISPATCH,
								 role_options,
								 PGC_BACKEND,
								 0,
								 NULL, NULL, NULL);

	DefineCustomIntVariable("gp_session_id",
							"Coordinator session id this backend works for (-1 = none).",
							NULL,
							&gp_session_id,
							-1, -1, INT_MAX,
							PGC_BACKEND,
							0,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("gp_is_writer",
							 "Whether this backend is the writer of its session on this instance.",
							 NULL,
							 &gp_is_writer,
							 false,
							 PGC_BACKEND,
							 0,
							 NULL, NULL, NULL);

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = gpemu_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = gpemu_shmem_startup;
	prev_client_auth_hook = ClientAuthentication_hook;
	ClientAuthentication_hook = gpemu_client_auth;
}
