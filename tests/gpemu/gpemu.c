/*-------------------------------------------------------------------------
 *
 * gpemu.c
 *		Test-only PostgreSQL 15 module that makes a plain server answer like
 *		one instance (coordinator or primary segment) of a Greenplum 6 or 7
 *		cluster, as far as the exporter can see:
 *
 *		- the family's server_version at login (9.4.26 or 12.12), the
 *		  settings gp_contentid / gp_dbid and the per-connection options
 *		  gp_session_role (GP6) / gp_role, gp_session_id and gp_is_writer;
 *		- the admission rules of a primary segment (utility mode required,
 *		  the last slot kept for the FTS prober), the family-specific
 *		  refusal of the other family's utility-mode option and, on GP6
 *		  (PostgreSQL 9.4), walsenders counted against max_connections;
 *		- a per-backend record in shared memory of the declared
 *		  gp_session_id / gp_is_writer (on the coordinator, a session that
 *		  declares none gets the next id of a counter, as on Greenplum) and
 *		  of a declared wait reason (gpemu.wait_reason, a test device for
 *		  the resource group / resource queue / replication waits that only
 *		  a real cluster produces), read by the SQL functions gpemu_sess_id(),
 *		  gpemu_is_writer() and gpemu_wait_reason() on which the replacement
 *		  views in sql/gp6.sql and sql/gp7.sql are built;
 *		- gpemu_free_slots(), the connection slots free as admission counts
 *		  them, with which the harness waits for departing backends;
 *		- the refusal of what the family's real server does not have, so that
 *		  a test fails where the real server would: setting names (at
 *		  connection start, in SET / SHOW / ALTER ... SET, and as constant
 *		  arguments of current_setting() / set_config()) and built-in
 *		  functions and operators, checked after parse analysis against the
 *		  lists in catalog/ (PostgreSQL 15 has many that Greenplum 6's 9.4
 *		  and Greenplum 7's 12 lack);
 *		- GP6's refusal of PREPARE TRANSACTION in utility mode.
 *
 *		It must be loaded through shared_preload_libraries.  The contract is
 *		described in docs/emulation.md.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <limits.h>

#include "access/transam.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "libpq/auth.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "nodes/pg_list.h"
#include "parser/analyze.h"
#include "parser/parse_node.h"
#include "parser/parser.h"
#include "postmaster/postmaster.h"
#include "replication/walsender.h"
#include "replication/walsender_private.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

PG_FUNCTION_INFO_V1(gpemu_sess_id);
PG_FUNCTION_INFO_V1(gpemu_is_writer);
PG_FUNCTION_INFO_V1(gpemu_wait_reason);
PG_FUNCTION_INFO_V1(gpemu_free_slots);
PG_FUNCTION_INFO_V1(gpemu_setting_exists);

/* Connection slots GP6+ segments keep free for the FTS prober. */
#define GPEMU_FTS_RESERVED_SLOTS 1

/*
 * First session id the coordinator gives a session that declares none.  Far
 * above the ids tests declare for the distributed sessions they play, so the
 * two never meet.
 */
#define GPEMU_FIRST_SESS_ID 10000

/*
 * Longest entry of the catalog lists, terminator included: a function
 * signature "proname\targtypes" or a setting name.  The longest in the lists
 * is under 100 characters; loading refuses a longer one.
 */
#define GPEMU_LIST_KEY_LEN 128

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

/* Values of gpemu.wait_reason: what a session says it waits for. */
typedef enum GpemuWaitReason
{
	GPEMU_WAIT_NONE,
	GPEMU_WAIT_RESOURCE_GROUP,
	GPEMU_WAIT_RESOURCE_QUEUE,
	GPEMU_WAIT_REPLICATION
} GpemuWaitReason;

static const struct config_enum_entry wait_reason_options[] = {
	{"none", GPEMU_WAIT_NONE, false},
	{"resource_group", GPEMU_WAIT_RESOURCE_GROUP, false},
	{"resource_queue", GPEMU_WAIT_RESOURCE_QUEUE, false},
	{"replication", GPEMU_WAIT_REPLICATION, false},
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
static char *gpemu_catalog_dir = NULL;

/* Per-connection options. */
static int	gp_session_role = GPEMU_ROLE_DISPATCH;	/* GP6 only */
static int	gp_role = GPEMU_ROLE_DISPATCH;
static int	gp_session_id = -1;
static bool gp_is_writer = false;
static bool gpemu_allow_utility_prepare = false;
static int	declared_wait_reason = GPEMU_WAIT_NONE;	/* gpemu.wait_reason */

/*
 * What the family's real server knows, loaded by the postmaster from
 * gpemu.catalog_dir and inherited by every backend: the signatures of its
 * built-in functions ("proname\targtypes", pseudo-types in canonical form,
 * see canonical_type_name()) and its setting names in lower case.
 */
static HTAB *family_functions = NULL;
static HTAB *family_settings = NULL;

/* How a call is written; the lists are checked differently for each. */
typedef enum GpemuCallKind
{
	GPEMU_CALL_FUNCTION,		/* f(...), a cast, an aggregate or window call */
	GPEMU_CALL_SQL_SYNTAX,		/* EXTRACT(...), SIMILAR TO, ... */
	GPEMU_CALL_OPERATOR
} GpemuCallKind;

/* Per-backend cache of the verdict on each function or operator used. */
typedef struct GpemuVerdictKey
{
	Oid			oid;			/* function or operator */
	int			nargs;			/* arguments written in the call */
	GpemuCallKind kind;
} GpemuVerdictKey;

typedef struct GpemuVerdict
{
	GpemuVerdictKey key;
	bool		known;			/* the family's server has it */
} GpemuVerdict;

static HTAB *verdicts = NULL;

/*
 * What one client backend declared at connection time, or was given.
 * pid = 0 marks a free slot.
 */
typedef struct GpemuBackend
{
	int			pid;
	int			sess_id;
	bool		is_writer;
	GpemuWaitReason wait_reason;
} GpemuBackend;

typedef struct GpemuShared
{
	LWLock	   *lock;			/* protects next_sess_id and slots[] */
	int			next_sess_id;	/* the coordinator's next session id */
	int			nslots;
	GpemuBackend slots[FLEXIBLE_ARRAY_MEMBER];	/* indexed by BackendId */
} GpemuShared;

static GpemuShared *gpemu_shared = NULL;

/* The connection options that matter for admission, as sent by the client. */
typedef struct GpemuStartupOptions
{
	const char *session_role;
	bool		has_role;
	const char *role;
	const char *session_id;
	const char *is_writer;
	const char *wait_reason;
	const char *unknown_setting;	/* first one the family does not have */
} GpemuStartupOptions;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static ClientAuthentication_hook_type prev_client_auth_hook = NULL;
static post_parse_analyze_hook_type prev_post_parse_analyze_hook = NULL;
static ProcessUtility_hook_type prev_process_utility_hook = NULL;

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
		gpemu_shared->next_sess_id = GPEMU_FIRST_SESS_ID;
		gpemu_shared->nslots = MaxBackends + 1;
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * The name a pseudo-type has in the catalog lists.  PostgreSQL 13 added the
 * anycompatible family where 9.4 and 12 have the anyelement family (the same
 * functions, e.g. array_append(anycompatiblearray, anycompatible)), and 9.5
 * split 9.4's array_agg(anyelement) into array_agg(anynonarray) and
 * array_agg(anyarray): anynonarray counts as anyelement.
 */
static const char *
canonical_type_name(const char *typname)
{
	static const struct
	{
		const char *name;
		const char *canonical;
	}			aliases[] = {
		{"anycompatible", "anyelement"},
		{"anycompatiblearray", "anyarray"},
		{"anycompatiblenonarray", "anyelement"},
		{"anycompatiblerange", "anyrange"},
		{"anynonarray", "anyelement"},
	};

	for (int i = 0; i < lengthof(aliases); i++)
	{
		if (strcmp(typname, aliases[i].name) == 0)
			return aliases[i].canonical;
	}
	return typname;
}

static bool
list_contains(HTAB *list, const char *key)
{
	/* Longer keys cannot be in the list, and dynahash would truncate them. */
	return strlen(key) < GPEMU_LIST_KEY_LEN &&
		hash_search(list, key, HASH_FIND, NULL) != NULL;
}

/*
 * Reads one list of the family, "<family>_<suffix>", from gpemu.catalog_dir
 * into a hash table in TopMemoryContext (dynahash's default parent), so that
 * backends inherit it from the postmaster.  Empty lines and "#" comments
 * are skipped, and so is the first line of a function list (its header).
 * Function signatures get canonical pseudo-type names, setting names are
 * lower-cased.
 */
static HTAB *
load_catalog_list(const char *suffix, bool functions)
{
	const char *family = family_options[gpemu_family].name;
	char		path[MAXPGPATH];
	char		line[1024];
	HASHCTL		ctl;
	HTAB	   *list;
	FILE	   *file;
	int			lineno = 0;

	if (gpemu_catalog_dir == NULL || gpemu_catalog_dir[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("gpemu.catalog_dir is not set"),
				 errhint("Set it to a directory holding the lists of tests/gpemu/catalog/.")));
	snprintf(path, sizeof(path), "%s/%s_%s", gpemu_catalog_dir, family, suffix);
	file = AllocateFile(path, "r");
	if (file == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open gpemu catalog list \"%s\": %m", path),
				 errhint("gpemu.catalog_dir must hold the lists of tests/gpemu/catalog/.")));

	ctl.keysize = GPEMU_LIST_KEY_LEN;
	ctl.entrysize = GPEMU_LIST_KEY_LEN;
	list = hash_create(path, 4096, &ctl, HASH_ELEM | HASH_STRINGS);

	while (fgets(line, sizeof(line), file) != NULL)
	{
		StringInfoData key;
		char	   *text = line;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(file))
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("line %d of \"%s\" is too long", lineno, path)));
		line[strcspn(line, "\r\n")] = '\0';
		if (*text == '\0' || *text == '#' || (functions && lineno == 1))
			continue;

		initStringInfo(&key);
		if (functions)
		{
			char	   *args = strchr(text, '\t');
			char	   *type;
			bool		first = true;

			if (args == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_CONFIG_FILE_ERROR),
						 errmsg("line %d of \"%s\" has no tab", lineno, path)));
			*args++ = '\0';
			appendStringInfo(&key, "%s\t", text);
			for (type = strtok(args, " "); type != NULL; type = strtok(NULL, " "))
			{
				if (!first)
					appendStringInfoChar(&key, ' ');
				appendStringInfoString(&key, canonical_type_name(type));
				first = false;
			}
		}
		else
		{
			for (; *text; text++)
				appendStringInfoChar(&key, pg_ascii_tolower((unsigned char) *text));
		}
		if (key.len >= GPEMU_LIST_KEY_LEN)
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("line %d of \"%s\" is too long", lineno, path)));
		(void) hash_search(list, key.data, HASH_ENTER, NULL);
		pfree(key.data);
	}
	if (ferror(file))
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read \"%s\": %m", path)));
	FreeFile(file);
	return list;
}

/*
 * Whether the family's server accepts this setting name.  Names with a dot
 * are custom settings, which every server accepts as placeholders.
 */
static bool
family_has_setting(const char *name)
{
	char		key[GPEMU_LIST_KEY_LEN];
	int			i;

	if (strchr(name, '.') != NULL)
		return true;
	for (i = 0; name[i] != '\0' && i < GPEMU_LIST_KEY_LEN - 1; i++)
		key[i] = pg_ascii_tolower((unsigned char) name[i]);
	if (name[i] != '\0')
		return false;
	key[i] = '\0';
	return hash_search(family_settings, key, HASH_FIND, NULL) != NULL;
}

/* PostgreSQL's own answer to a setting it does not have. */
static void
check_setting(const char *name, int elevel)
{
	if (!family_has_setting(name))
		ereport(elevel,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unrecognized configuration parameter \"%s\"", name)));
}

/*
 * Remember one "name=value" startup option if it is one of ours, and the
 * first setting the family does not have.
 */
static void
collect_option(GpemuStartupOptions *opts, const char *name, const char *value)
{
	if (opts->unknown_setting == NULL && !family_has_setting(name))
		opts->unknown_setting = pstrdup(name);

	if (pg_strcasecmp(name, "gp_session_role") == 0)
		opts->session_role = value;
	else if (pg_strcasecmp(name, "gp_role") == 0)
	{
		opts->has_role = true;
		opts->role = value;
	}
	else if (pg_strcasecmp(name, "gp_session_id") == 0)
		opts->session_id = value;
	else if (pg_strcasecmp(name, "gp_is_writer") == 0)
		opts->is_writer = value;
	else if (pg_strcasecmp(name, "gpemu.wait_reason") == 0)
		opts->wait_reason = value;
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
	GpemuWaitReason wait_reason = GPEMU_WAIT_NONE;
	bool		given_id;

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
	if (opts->wait_reason != NULL)
	{
		for (int i = 0; wait_reason_options[i].name != NULL; i++)
		{
			if (pg_strcasecmp(opts->wait_reason, wait_reason_options[i].name) == 0)
				wait_reason = wait_reason_options[i].val;
		}
	}

	/*
	 * The coordinator gives every session an id of its own, utility-mode
	 * sessions included; only the connections that play a coordinator
	 * backend of a given distributed session declare theirs.
	 */
	given_id = gp_contentid < 0 && sess_id <= 0;

	slot = &gpemu_shared->slots[MyBackendId];
	LWLockAcquire(gpemu_shared->lock, LW_EXCLUSIVE);
	if (given_id)
		sess_id = gpemu_shared->next_sess_id++;
	slot->pid = MyProcPid;
	slot->sess_id = sess_id;
	slot->is_writer = is_writer;
	slot->wait_reason = wait_reason;
	LWLockRelease(gpemu_shared->lock);

	/* Also runs when PostgreSQL itself rejects the connection later on. */
	before_shmem_exit(gpemu_backend_exit, Int32GetDatum(MyBackendId));

	/*
	 * SHOW gp_session_id tells the given id, as on Greenplum; the override
	 * outranks a -1 sent in the startup options, applied after this hook.
	 */
	if (given_id)
	{
		char		value[16];

		snprintf(value, sizeof(value), "%d", sess_id);
		SetConfigOption("gp_session_id", value, PGC_BACKEND, PGC_S_OVERRIDE);
	}
}

/* Walsenders running now, as pg_stat_replication lists them. */
static int
active_walsenders(void)
{
	int			n = 0;

	for (int i = 0; i < max_wal_senders; i++)
	{
		WalSnd	   *walsnd = &WalSndCtl->walsnds[i];
		pid_t		pid;

		SpinLockAcquire(&walsnd->mutex);
		pid = walsnd->pid;
		SpinLockRelease(&walsnd->mutex);
		if (pid != 0)
			n++;
	}
	return n;
}

/*
 * The slot rules of the family.  PostgreSQL 15 gives walsenders slots of
 * their own; in 9.4 (GP6) a walsender, e.g. the mirror's, takes one of the
 * max_connections slots like a client backend, so on gp6 every active
 * walsender leaves one slot fewer for everybody else.  This backend's own
 * slot is already taken (InitProcess came first), so HaveNFreeProcs() counts
 * the slots left for others, as in PostgreSQL's own checks.  InitPostgres has
 * a transaction open here, so the catalog lookup is safe.
 */
static void
check_free_slots(Port *port)
{
	int			walsenders = gpemu_family == GPEMU_GP6 ? active_walsenders() : 0;
	Oid			roleid = get_role_oid(port->user_name, true);
	bool		is_superuser = OidIsValid(roleid) && superuser_arg(roleid);

	/* 9.4's InitProcess: no slot left once the walsenders have theirs. */
	if (!HaveNFreeProcs(walsenders))
		ereport(FATAL,
				(errcode(ERRCODE_TOO_MANY_CONNECTIONS),
				 errmsg("sorry, too many clients already")));

	/*
	 * PostgreSQL's own superuser_reserved_connections check, which runs after
	 * this hook, with the walsenders' slots taken.
	 */
	if (!is_superuser && ReservedBackends > 0 &&
		!HaveNFreeProcs(ReservedBackends + walsenders))
		ereport(FATAL,
				(errcode(ERRCODE_TOO_MANY_CONNECTIONS),
				 errmsg("remaining connection slots are reserved for non-replication superuser connections")));

	/* GP6+ segments keep the last slot for the FTS prober even against superusers. */
	if (gp_contentid >= 0 && is_superuser &&
		!HaveNFreeProcs(GPEMU_FTS_RESERVED_SLOTS + walsenders))
		ereport(FATAL,
				(errcode(ERRCODE_TOO_MANY_CONNECTIONS),
				 errmsg("connection limit exceeded for superusers (need at least %d connections reserved for FTS handler)",
						GPEMU_FTS_RESERVED_SLOTS)));
}

/*
 * The PostgreSQL base a client's login reports (server_version, sent once
 * the session starts) and SHOW answers, as the family's real server does:
 * Greenplum 6.24.3 is PostgreSQL 9.4.26 and 7.0.0 is 12.12, as version() in
 * sql/gp6.sql and sql/gp7.sql says.  server_version_num cannot follow (its
 * range is PostgreSQL 15's number only); clients read the string.  Set per
 * client backend: replication connections (pg_basebackup of a standby) keep
 * PostgreSQL 15's, which their client needs to pick its protocol.
 */
static void
report_family_version(void)
{
	SetConfigOption("server_version",
					gpemu_family == GPEMU_GP6 ? "9.4.26" : "12.12",
					PGC_INTERNAL, PGC_S_OVERRIDE);
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

	report_family_version();
	parse_startup_options(port, &opts);

	/* What Greenplum 6 answers to the GP7 utility-mode option. */
	if (gpemu_family == GPEMU_GP6 && opts.has_role)
		ereport(FATAL,
				(errcode(ERRCODE_CANNOT_CONNECT_NOW),
				 errmsg("System was started in master-only utility mode - only utility mode connections are allowed")));

	/*
	 * The real server refuses a setting it does not have when it applies the
	 * startup options, before it looks at the session role.  PostgreSQL 15
	 * has most of them, and would refuse GP7's missing gp_session_role only
	 * after the segment check below.
	 */
	if (opts.unknown_setting != NULL)
		ereport(FATAL,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unrecognized configuration parameter \"%s\"",
						opts.unknown_setting)));

	role_value = gpemu_family == GPEMU_GP6 ? opts.session_role : opts.role;
	if (gp_contentid >= 0 &&
		!role_is(role_value, "utility") && !role_is(role_value, "execute"))
		ereport(FATAL,
				(errcode(ERRCODE_CANNOT_CONNECT_NOW),
				 errmsg("connections to primary segments are not allowed"),
				 errdetail("This database instance is running as a primary segment in a Greenplum cluster and does not permit direct connections."),
				 errhint("To force a connection anyway (dangerous!), use utility mode.")));

	check_free_slots(port);
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
 * gpemu_wait_reason(pid int4) returns text: the declared gpemu.wait_reason
 * (resource_group, resource_queue or replication), NULL for none.
 */
Datum
gpemu_wait_reason(PG_FUNCTION_ARGS)
{
	GpemuBackend backend;

	if (lookup_backend(PG_GETARG_INT32(0), &backend) &&
		backend.wait_reason != GPEMU_WAIT_NONE)
		PG_RETURN_TEXT_P(cstring_to_text(wait_reason_options[backend.wait_reason].name));
	PG_RETURN_NULL();
}

/*
 * gpemu_free_slots() returns int4: the connection slots free for client
 * backends right now, counted the way admission counts them.  A session
 * that closes leaves pg_stat_activity before it gives its slot back, so a
 * test that fills an instance compares the two to wait until no slot is held
 * by a backend still starting or already leaving.
 */
Datum
gpemu_free_slots(PG_FUNCTION_ARGS)
{
	int			n = 0;

	/* ProcGlobal's free list is private to proc.c; HaveNFreeProcs() is not. */
	while (n < MaxConnections && HaveNFreeProcs(n + 1))
		n++;
	PG_RETURN_INT32(n);
}

/* gpemu_setting_exists(name text) returns bool: the family has this setting. */
Datum
gpemu_setting_exists(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(family_has_setting(text_to_cstring(PG_GETARG_TEXT_PP(0))));
}

/*
 * Appends the list form of a type's name: pg_type.typname, pseudo-types in
 * canonical form.
 */
static void
append_list_type_name(StringInfo buf, Oid typid)
{
	HeapTuple	tuple = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for type %u", typid);
	appendStringInfoString(buf,
						   canonical_type_name(NameStr(((Form_pg_type) GETSTRUCT(tuple))->typname)));
	ReleaseSysCache(tuple);
}

/* Whether the family has the function name(argtypes[0 .. nargs-1]). */
static bool
family_has_signature(const char *name, const Oid *argtypes, int nargs)
{
	StringInfoData sig;
	bool		found;

	initStringInfo(&sig);
	appendStringInfo(&sig, "%s\t", name);
	for (int i = 0; i < nargs; i++)
	{
		if (i > 0)
			appendStringInfoChar(&sig, ' ');
		append_list_type_name(&sig, argtypes[i]);
	}
	found = list_contains(family_functions, sig.data);
	pfree(sig.data);
	return found;
}

/*
 * Whether the family has the function a call with nargs arguments resolved
 * to.  Only PostgreSQL's own built-ins (pg_catalog, OIDs below
 * FirstNormalObjectId) are checked: functions made by SQL, the module's
 * gpemu_* helpers among them, belong to the test.
 */
static bool
family_has_function(Oid funcid, int nargs, bool sql_syntax)
{
	static const Oid similar_escape_args[] = {TEXTOID, TEXTOID};
	HeapTuple	tuple;
	Form_pg_proc proc;
	const char *name;
	bool		known;

	if (funcid >= FirstNormalObjectId)
		return true;
	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for function %u", funcid);
	proc = (Form_pg_proc) GETSTRUCT(tuple);
	name = NameStr(proc->proname);

	if (proc->pronamespace != PG_CATALOG_NAMESPACE)
		known = true;
	else if (sql_syntax &&
			 (funcid == F_SIMILAR_TO_ESCAPE_TEXT ||
			  funcid == F_SIMILAR_TO_ESCAPE_TEXT_TEXT))
	{
		/* 9.4 and 12 turn "a SIMILAR TO b [ESCAPE c]" into similar_escape(b, c). */
		known = family_has_signature("similar_escape", similar_escape_args, 2);
	}
	else
	{
		/* EXTRACT(field FROM x) is date_part(field, x) before PostgreSQL 14. */
		if (sql_syntax && strcmp(name, "extract") == 0)
			name = "date_part";

		/*
		 * A call that leaves out arguments relies on their defaults.  Where
		 * PostgreSQL 15 added a parameter with a default (e.g.
		 * pg_terminate_backend(pid, timeout)), the family's function is the
		 * one with the arguments written.
		 */
		known = family_has_signature(name, proc->proargtypes.values, proc->pronargs) ||
			(nargs < proc->pronargs &&
			 family_has_signature(name, proc->proargtypes.values, nargs));

		/*
		 * 9.6 changed to_regclass() and its kin from cstring to text; on 9.4
		 * a string literal converts to cstring just as well.
		 */
		if (!known)
		{
			Oid			cstring_args[FUNC_MAX_ARGS];

			for (int i = 0; i < proc->pronargs; i++)
				cstring_args[i] = proc->proargtypes.values[i] == TEXTOID ?
					CSTRINGOID : proc->proargtypes.values[i];
			known = family_has_signature(name, cstring_args, proc->pronargs);
		}
	}
	ReleaseSysCache(tuple);
	return known;
}

/*
 * Whether the family has the function behind an operator.  PostgreSQL 12
 * added name/text cross-type operators (name = text is nameeqtext); 9.4
 * casts the name to text and uses the text operator, so that one counts.
 */
static bool
family_has_operator(Oid opno, int nargs)
{
	HeapTuple	tuple;
	Form_pg_operator oper;
	bool		known;

	if (family_has_function(get_opcode(opno), nargs, false))
		return true;
	tuple = SearchSysCache1(OPEROID, ObjectIdGetDatum(opno));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for operator %u", opno);
	oper = (Form_pg_operator) GETSTRUCT(tuple);
	known = false;
	if (oper->oprleft == NAMEOID || oper->oprright == NAMEOID)
	{
		Oid			text_op;

		text_op = OpernameGetOprid(list_make2(makeString("pg_catalog"),
											  makeString(NameStr(oper->oprname))),
								   oper->oprleft == NAMEOID ? TEXTOID : oper->oprleft,
								   oper->oprright == NAMEOID ? TEXTOID : oper->oprright);
		known = OidIsValid(text_op) &&
			family_has_function(get_opcode(text_op), nargs, false);
	}
	ReleaseSysCache(tuple);
	return known;
}

/* The verdict on a function or operator, computed once per backend. */
static bool
family_has(GpemuCallKind kind, Oid oid, int nargs)
{
	GpemuVerdictKey key;
	GpemuVerdict *verdict;
	bool		known;

	if (verdicts == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(GpemuVerdictKey);
		ctl.entrysize = sizeof(GpemuVerdict);
		verdicts = hash_create("gpemu verdicts", 256, &ctl, HASH_ELEM | HASH_BLOBS);
	}
	/* zeroed: the key is hashed as bytes, padding included */
	memset(&key, 0, sizeof(key));
	key.oid = oid;
	key.nargs = nargs;
	key.kind = kind;
	verdict = hash_search(verdicts, &key, HASH_FIND, NULL);
	if (verdict != NULL)
		return verdict->known;

	if (kind == GPEMU_CALL_OPERATOR)
		known = family_has_operator(oid, nargs);
	else
		known = family_has_function(oid, nargs, kind == GPEMU_CALL_SQL_SYNTAX);
	verdict = hash_search(verdicts, &key, HASH_ENTER, NULL);
	verdict->known = known;
	return known;
}

/* The DML statement inside a raw statement, or NULL. */
static Node *
raw_dml_statement(Node *stmt)
{
	for (;;)
	{
		if (stmt == NULL)
			return NULL;
		switch (nodeTag(stmt))
		{
			case T_ExplainStmt:
				stmt = ((ExplainStmt *) stmt)->query;
				break;
			case T_CreateTableAsStmt:
				stmt = ((CreateTableAsStmt *) stmt)->query;
				break;
			case T_DeclareCursorStmt:
				stmt = ((DeclareCursorStmt *) stmt)->query;
				break;
			case T_PrepareStmt:
				stmt = ((PrepareStmt *) stmt)->query;
				break;
			case T_CopyStmt:
				stmt = ((CopyStmt *) stmt)->query;
				break;
			case T_ViewStmt:
				stmt = ((ViewStmt *) stmt)->query;
				break;
			case T_SelectStmt:
			case T_InsertStmt:
			case T_UpdateStmt:
			case T_DeleteStmt:
			case T_MergeStmt:
				return stmt;
			default:
				return NULL;
		}
	}
}

/*
 * Finds an undecorated string literal or NULL at this location of a raw
 * parse tree.  'x'::type, type 'x' and CAST('x' AS type) are TypeCasts.
 */
static bool
untyped_literal_walker(Node *node, int *location)
{
	if (node == NULL)
		return false;
	if (IsA(node, TypeCast) && IsA(((TypeCast *) node)->arg, A_Const))
		return false;
	if (IsA(node, A_Const))
	{
		A_Const    *con = (A_Const *) node;

		return con->location == *location &&
			(con->isnull || IsA(&con->val, String));
	}
	return raw_expression_tree_walker(node, untyped_literal_walker, location);
}

/*
 * Whether the constant at this location was written as an undecorated
 * string literal or NULL, whose type PostgreSQL calls "unknown" in the
 * message for a missing function; the analyzed tree holds it coerced to the
 * parameter's type already, so the source is parsed again.  That succeeded a
 * moment ago, but maybe not in the default mode (PL/pgSQL expressions), and
 * the raw walker knows DML only; the parser touches no shared state, so a
 * failure just means the message names the coerced type.
 */
static bool
is_untyped_literal(ParseState *pstate, int location)
{
	const char *source = pstate->p_sourcetext;
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool found = false;

	if (source == NULL || location < 0)
		return false;
	PG_TRY();
	{
		ListCell   *lc;

		foreach(lc, raw_parser(source, RAW_PARSE_DEFAULT))
		{
			Node	   *stmt = raw_dml_statement(lfirst_node(RawStmt, lc)->stmt);

			if (untyped_literal_walker(stmt, &location))
			{
				found = true;
				break;
			}
		}
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
	}
	PG_END_TRY();
	return found;
}

/* The type of an argument as PostgreSQL names it in "does not exist" messages. */
static const char *
argument_type_name(ParseState *pstate, Node *arg)
{
	Node	   *written = strip_implicit_coercions(arg);

	if (IsA(written, Const) && is_untyped_literal(pstate, ((Const *) written)->location))
		return "unknown";
	return format_type_be(exprType(written));
}

static void
report_missing_function(ParseState *pstate, Oid funcid, List *args, int location)
{
	StringInfoData sig;
	ListCell   *lc;

	initStringInfo(&sig);
	foreach(lc, args)
	{
		Node	   *arg = lfirst(lc);

		if (foreach_current_index(lc) > 0)
			appendStringInfoString(&sig, ", ");
		if (IsA(arg, NamedArgExpr))
		{
			appendStringInfo(&sig, "%s => ", ((NamedArgExpr *) arg)->name);
			arg = (Node *) ((NamedArgExpr *) arg)->arg;
		}
		appendStringInfoString(&sig, argument_type_name(pstate, arg));
	}
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_FUNCTION),
			 errmsg("function %s(%s) does not exist", get_func_name(funcid), sig.data),
			 errhint("No function matches the given name and argument types. You might need to add explicit type casts."),
			 parser_errposition(pstate, location)));
}

/*
 * How the parser reads "a SIMILAR TO b": similar_to_escape(b) as an
 * ordinary call, located at the SIMILAR keyword rather than at a function
 * name.
 */
static bool
is_similar_to(ParseState *pstate, FuncExpr *func)
{
	const char *source = pstate->p_sourcetext;
	const char *at;

	if ((func->funcid != F_SIMILAR_TO_ESCAPE_TEXT &&
		 func->funcid != F_SIMILAR_TO_ESCAPE_TEXT_TEXT) ||
		source == NULL || func->location < 0)
		return false;
	at = source + func->location;
	return pg_strncasecmp(at, "similar", 7) == 0 &&
		!(isalnum((unsigned char) at[7]) || at[7] == '_' || at[7] == '$' ||
		  IS_HIGHBIT_SET(at[7]));
}

/*
 * current_setting(name) and set_config(name, ...) with a constant name the
 * family does not have fail on the real server when they run; here already
 * at parse time.  current_setting(name, missing_ok => true) returns NULL
 * there instead, so it is only checked with a constant false.
 */
static void
check_setting_argument(FuncExpr *func)
{
	Node	   *name;

	switch (func->funcid)
	{
		case F_CURRENT_SETTING_TEXT:
		case F_SET_CONFIG:
			break;
		case F_CURRENT_SETTING_TEXT_BOOL:
			{
				Node	   *missing_ok = strip_implicit_coercions(lsecond(func->args));

				if (!IsA(missing_ok, Const) || ((Const *) missing_ok)->constisnull ||
					DatumGetBool(((Const *) missing_ok)->constvalue))
					return;
			}
			break;
		default:
			return;
	}
	name = strip_implicit_coercions(linitial(func->args));
	if (IsA(name, Const) && !((Const *) name)->constisnull &&
		((Const *) name)->consttype == TEXTOID)
		check_setting(TextDatumGetCString(((Const *) name)->constvalue), ERROR);
}

static void
check_function_call(ParseState *pstate, FuncExpr *func)
{
	bool		sql_syntax = func->funcformat == COERCE_SQL_SYNTAX || is_similar_to(pstate, func);

	if (!family_has(sql_syntax ? GPEMU_CALL_SQL_SYNTAX : GPEMU_CALL_FUNCTION,
					func->funcid, list_length(func->args)))
	{
		/* What PostgreSQL says when there is no cast between two types. */
		if (func->funcformat == COERCE_EXPLICIT_CAST)
			ereport(ERROR,
					(errcode(ERRCODE_CANNOT_COERCE),
					 errmsg("cannot cast type %s to %s",
							format_type_be(exprType(linitial(func->args))),
							format_type_be(func->funcresulttype)),
					 parser_errposition(pstate, func->location)));
		report_missing_function(pstate, func->funcid, func->args, func->location);
	}
	check_setting_argument(func);
}

static void
check_operator(ParseState *pstate, Oid opno, List *args, bool array_right, int location)
{
	StringInfoData sig;
	Node	   *right = llast(args);

	if (family_has(GPEMU_CALL_OPERATOR, opno, list_length(args)))
		return;

	initStringInfo(&sig);
	if (list_length(args) == 2)
		appendStringInfo(&sig, "%s ", argument_type_name(pstate, linitial(args)));
	appendStringInfoString(&sig, get_opname(opno));
	/* x op ANY (array) names the array's element type */
	if (array_right)
		appendStringInfo(&sig, " %s",
						 format_type_be(get_base_element_type(exprType(right))));
	else
		appendStringInfo(&sig, " %s", argument_type_name(pstate, right));
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_FUNCTION),
			 errmsg("operator does not exist: %s", sig.data),
			 errhint("No operator matches the given name and argument types. You might need to add explicit type casts."),
			 parser_errposition(pstate, location)));
}

/*
 * Checks every function, aggregate, window function and operator of an
 * analyzed query, its subqueries, CTEs, sublinks and set operations
 * included.  Views are expanded later, by the rewriter, so their own
 * definitions are not checked again.
 */
static bool
check_catalog_walker(Node *node, ParseState *pstate)
{
	if (node == NULL)
		return false;
	switch (nodeTag(node))
	{
		case T_Query:
			{
				Query	   *query = (Query *) node;
				Node	   *utility = query->utilityStmt;

				if (utility == NULL)
					return query_tree_walker(query, check_catalog_walker, pstate, 0);

				/* The parts of utility statements analyzed with them. */
				if (IsA(utility, ExplainStmt))
					return check_catalog_walker(((ExplainStmt *) utility)->query, pstate);
				if (IsA(utility, CreateTableAsStmt))
					return check_catalog_walker(((CreateTableAsStmt *) utility)->query, pstate);
				if (IsA(utility, DeclareCursorStmt))
					return check_catalog_walker(((DeclareCursorStmt *) utility)->query, pstate);
				if (IsA(utility, CallStmt))
					return check_catalog_walker((Node *) ((CallStmt *) utility)->funcexpr, pstate);
				return false;
			}
		case T_FuncExpr:
			check_function_call(pstate, (FuncExpr *) node);
			break;
		case T_Aggref:
			{
				Aggref	   *agg = (Aggref *) node;

				if (!family_has(GPEMU_CALL_FUNCTION, agg->aggfnoid,
								list_length(agg->aggargtypes)))
				{
					List	   *args = list_copy(agg->aggdirectargs);
					ListCell   *lc;

					foreach(lc, agg->args)
						args = lappend(args, lfirst_node(TargetEntry, lc)->expr);
					report_missing_function(pstate, agg->aggfnoid, args, agg->location);
				}
			}
			break;
		case T_WindowFunc:
			{
				WindowFunc *win = (WindowFunc *) node;

				if (!family_has(GPEMU_CALL_FUNCTION, win->winfnoid, list_length(win->args)))
					report_missing_function(pstate, win->winfnoid, win->args, win->location);
			}
			break;
		case T_OpExpr:
		case T_DistinctExpr:
		case T_NullIfExpr:
			{
				OpExpr	   *op = (OpExpr *) node;

				check_operator(pstate, op->opno, op->args, false, op->location);
			}
			break;
		case T_ScalarArrayOpExpr:
			{
				ScalarArrayOpExpr *op = (ScalarArrayOpExpr *) node;

				check_operator(pstate, op->opno, op->args, true, op->location);
			}
			break;
		default:
			break;
	}
	return expression_tree_walker(node, check_catalog_walker, pstate);
}

static void
gpemu_post_parse_analyze(ParseState *pstate, Query *query, JumbleState *jstate)
{
	if (prev_post_parse_analyze_hook)
		prev_post_parse_analyze_hook(pstate, query, jstate);

	(void) check_catalog_walker((Node *) query, pstate);
}

/* SET, RESET and their ALTER SYSTEM / ROLE / DATABASE forms. */
static void
check_set_statement(VariableSetStmt *stmt)
{
	switch (stmt->kind)
	{
		case VAR_SET_VALUE:
		case VAR_SET_DEFAULT:
		case VAR_SET_CURRENT:
		case VAR_RESET:
			check_setting(stmt->name, ERROR);
			break;
		case VAR_SET_MULTI:		/* SET TRANSACTION ..., SET SESSION CHARACTERISTICS */
		case VAR_RESET_ALL:
			break;
	}
}

static void
gpemu_process_utility(PlannedStmt *pstmt, const char *queryString,
					  bool readOnlyTree, ProcessUtilityContext context,
					  ParamListInfo params, QueryEnvironment *queryEnv,
					  DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;

	switch (nodeTag(parsetree))
	{
		case T_VariableSetStmt:
			check_set_statement((VariableSetStmt *) parsetree);
			break;
		case T_AlterSystemStmt:
			check_set_statement(((AlterSystemStmt *) parsetree)->setstmt);
			break;
		case T_AlterRoleSetStmt:
			check_set_statement(((AlterRoleSetStmt *) parsetree)->setstmt);
			break;
		case T_AlterDatabaseSetStmt:
			check_set_statement(((AlterDatabaseSetStmt *) parsetree)->setstmt);
			break;
		case T_VariableShowStmt:
			{
				const char *name = ((VariableShowStmt *) parsetree)->name;

				if (pg_strcasecmp(name, "all") != 0)
					check_setting(name, ERROR);
			}
			break;
		case T_TransactionStmt:

			/*
			 * Greenplum 6 prepares transactions only for the coordinator's
			 * two-phase commit; tests that need one on a segment ask for the
			 * shortcut with gpemu.allow_utility_prepare.
			 */
			if (((TransactionStmt *) parsetree)->kind == TRANS_STMT_PREPARE &&
				gpemu_family == GPEMU_GP6 &&
				gp_session_role == GPEMU_ROLE_UTILITY &&
				!gpemu_allow_utility_prepare)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("PREPARE TRANSACTION is not supported in utility mode")));
			break;
		default:
			break;
	}

	if (prev_process_utility_hook)
		prev_process_utility_hook(pstmt, queryString, readOnlyTree, context,
								  params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
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
	DefineCustomStringVariable("gpemu.catalog_dir",
							   "Directory of the lists of what each family knows.",
							   "Holds gp6_functions.tsv, gp6_settings.txt, gp7_functions.tsv and gp7_settings.txt (tests/gpemu/catalog/).",
							   &gpemu_catalog_dir,
							   NULL,
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);
	DefineCustomBoolVariable("gpemu.allow_utility_prepare",
							 "Lets a GP6 utility-mode session run PREPARE TRANSACTION.",
							 "A test shortcut: real Greenplum 6 refuses it in utility mode.",
							 &gpemu_allow_utility_prepare,
							 false,
							 PGC_BACKEND,
							 0,
							 NULL, NULL, NULL);
	DefineCustomEnumVariable("gpemu.wait_reason",
							 "What this session says it waits for while it runs a statement.",
							 "A test device: none, resource_group, resource_queue or replication, shown by pg_stat_activity and pg_locks.",
							 &declared_wait_reason,
							 GPEMU_WAIT_NONE,
							 wait_reason_options,
							 PGC_BACKEND,
							 0,
							 NULL, NULL, NULL);
	MarkGUCPrefixReserved("gpemu");

	/* Loaded once here, before the postmaster forks any backend. */
	family_functions = load_catalog_list("functions.tsv", true);
	family_settings = load_catalog_list("settings.txt", false);

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
	prev_post_parse_analyze_hook = post_parse_analyze_hook;
	post_parse_analyze_hook = gpemu_post_parse_analyze;
	prev_process_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = gpemu_process_utility;
}
