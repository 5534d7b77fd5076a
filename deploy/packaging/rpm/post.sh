# %post. On first install ($1 = 1), the configuration directory as the deb has
# it, readable by the service's group only: rpm creates it 0755 root:root, as
# the package lists only the file in it (cargo-generate-rpm 0.21 cannot add a
# directory entry). Then systemd is told about the unit; it is not enabled or
# started, as the example configuration names no real cluster (%systemd_post
# with no preset).
if [ "$1" -eq 1 ]; then
    chgrp greenplum_segment_exporter /etc/greenplum_segment_exporter
    chmod 0750 /etc/greenplum_segment_exporter
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
exit 0
