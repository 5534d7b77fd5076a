# %postun: forget the removed unit; after an upgrade ($1 >= 1) restart the
# service if it was running, as %systemd_postun_with_restart does. After an
# erase ($1 = 0), the configuration directory goes if empty: rpm keeps an edited
# configuration as .rpmsave, and files of the administrator's stay. The system
# user is kept (Fedora's packaging guidelines).
if [ "$1" -eq 0 ]; then
    rmdir /etc/greenplum_segment_exporter 2>/dev/null || :
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -ge 1 ]; then
        systemctl try-restart greenplum_segment_exporter.service >/dev/null 2>&1 || :
    fi
fi
exit 0
