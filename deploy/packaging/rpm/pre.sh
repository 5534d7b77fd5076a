# %pre: the unprivileged system user the unit runs as. Before the payload, so
# that rpm can give the configuration to its group.
NAME=greenplum_segment_exporter
getent group "$NAME" >/dev/null || groupadd --system "$NAME"
getent passwd "$NAME" >/dev/null || useradd --system --gid "$NAME" \
    --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
    --comment "Greenplum segment exporter" "$NAME"
exit 0
