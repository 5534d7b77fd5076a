//! `--web.systemd-socket`: the listening sockets systemd passes to a
//! socket-activated service (`sd_listen_fds(3)`: `LISTEN_PID`, `LISTEN_FDS`,
//! descriptors from 3 on), used instead of binding addresses.

use crate::config::ConfigError;
use std::net::TcpListener;
use std::os::fd::{FromRawFd, RawFd};

const FLAG: &str = "--web.systemd-socket";
/// `SD_LISTEN_FDS_START`.
const FIRST_FD: RawFd = 3;

fn refused(message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: FLAG.into(),
        message: message.into(),
    }
}

/// The TCP sockets systemd passed to this process, listening.
pub fn listeners() -> Result<Vec<TcpListener>, ConfigError> {
    let pid = std::env::var("LISTEN_PID").ok();
    if pid
        .as_deref()
        .is_some_and(|p| p.parse() != Ok(std::process::id()))
    {
        return Err(refused(
            "LISTEN_PID names another process: the sockets are not for this one",
        ));
    }
    let count: RawFd = match std::env::var("LISTEN_FDS").map(|n| n.parse()) {
        Ok(Ok(n)) if n > 0 => n,
        _ => {
            return Err(refused(
                "no socket passed by systemd (LISTEN_FDS unset): start the exporter from a \
                 .socket unit, or listen with --web.listen-address",
            ))
        }
    };
    (FIRST_FD..FIRST_FD + count).map(listener).collect()
}

fn listener(fd: RawFd) -> Result<TcpListener, ConfigError> {
    if !is_listening_socket(fd) {
        return Err(refused(format!(
            "descriptor {fd} from systemd is not a listening TCP socket (ListenStream= in the \
             .socket unit)"
        )));
    }
    // SAFETY: systemd hands the descriptor to this process, which owns it from
    // here; nothing else in the exporter uses descriptors 3 and up by number.
    let listener = unsafe { TcpListener::from_raw_fd(fd) };
    // Not passed on to anything the exporter might start.
    // SAFETY: fcntl on a descriptor this process owns.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    listener
        .set_nonblocking(true)
        .map_err(|e| refused(format!("descriptor {fd}: {e}")))?;
    Ok(listener)
}

/// True for a TCP (IPv4 or IPv6) socket in the listening state.
fn is_listening_socket(fd: RawFd) -> bool {
    let get = |option: libc::c_int| {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `value`.
        let r = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                option,
                (&mut value as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        (r == 0).then_some(value)
    };
    let inet = [Some(libc::AF_INET), Some(libc::AF_INET6)].contains(&get(libc::SO_DOMAIN));
    inet && get(libc::SO_TYPE) == Some(libc::SOCK_STREAM) && get(libc::SO_ACCEPTCONN) == Some(1)
}
