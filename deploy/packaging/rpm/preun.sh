# %preun: on erase ($1 = 0, not on upgrade), stop and disable the service, as
# %systemd_preun does; two commands because systemd 219 (RHEL 7) has no --now.
if [ "$1" -eq 0 ] && [ -d /run/systemd/system ]; then
    systemctl --no-reload disable greenplum_segment_exporter.service >/dev/null 2>&1 || :
    systemctl stop greenplum_segment_exporter.service >/dev/null 2>&1 || :
fi
exit 0
