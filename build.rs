//! Stamps the build for `--version` (the build block of Prometheus exporters)
//! and `greenplum_exporter_build_info`: GPSE_GIT_COMMIT and GPSE_GIT_BRANCH
//! (`unknown` outside a git checkout, e.g. built from a source tarball;
//! `HEAD` for a detached one), GPSE_BUILD_DATE (YYYY-MM-DD) and
//! GPSE_BUILD_TIME (YYYYMMDD-HH:MM:SS), UTC, from SOURCE_DATE_EPOCH when set
//! so that release builds are reproducible, GPSE_BUILD_USER (`user@host`, or
//! GPSE_BUILD_USER from the environment), GPSE_RUST_VERSION (of the
//! compiler) and GPSE_PLATFORM (`linux/amd64`, Go's names as Prometheus
//! prints them).
//!
//! It re-runs when HEAD moves, not on every source edit: a commit recompiles the
//! crate once, and the date is that of the first build of the commit.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-env-changed=GPSE_BUILD_USER");
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));

    let (commit, branch) = if own_checkout(&dir) {
        watch_head(&dir);
        (
            git(&dir, &["rev-parse", "--short", "HEAD"]),
            // Detached: HEAD, as Prometheus' builds say.
            git(&dir, &["symbolic-ref", "-q", "--short", "HEAD"]).or(Some("HEAD".into())),
        )
    } else {
        (None, None)
    };
    println!(
        "cargo:rustc-env=GPSE_GIT_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
    println!(
        "cargo:rustc-env=GPSE_GIT_BRANCH={}",
        branch.as_deref().unwrap_or("unknown")
    );
    println!("cargo:rustc-env=GPSE_BUILD_USER={}", build_user());
    println!("cargo:rustc-env=GPSE_RUST_VERSION={}", rust_version());
    println!("cargo:rustc-env=GPSE_PLATFORM={}", platform());

    let epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        // The reproducible-builds specification asks to fail on a malformed value.
        Ok(s) => s
            .trim()
            .parse::<i64>()
            .unwrap_or_else(|_| panic!("SOURCE_DATE_EPOCH is not a number of seconds: {s:?}")),
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
    };
    println!("cargo:rustc-env=GPSE_BUILD_DATE={}", date(epoch));
    println!(
        "cargo:rustc-env=GPSE_BUILD_TIME={}{}",
        date(epoch).replace('-', ""),
        time_of_day(epoch)
    );
}

/// `user@host` of the build, unless GPSE_BUILD_USER says.
fn build_user() -> String {
    if let Ok(user) = std::env::var("GPSE_BUILD_USER") {
        return user;
    }
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .or_else(|| {
            let out = Command::new("id").arg("-un").output().ok()?;
            let name = String::from_utf8(out.stdout).ok()?;
            (!name.trim().is_empty()).then(|| name.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    format!("{user}@{host}")
}

/// The compiler's version (`1.91.0`), from `$RUSTC --version`.
fn rust_version() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc).arg("--version").output().ok();
    out.and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

/// The target as Go names it (`linux/amd64`), as Prometheus builds print it.
fn platform() -> String {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_else(|_| "unknown".into());
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "unknown".into());
    let arch = match arch.as_str() {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    };
    format!("{os}/{arch}")
}

/// `-HH:MM:SS` of a Unix time, UTC.
fn time_of_day(epoch: i64) -> String {
    let s = epoch.rem_euclid(86_400);
    format!("-{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Runs git in `dir`; `None` when git is missing or fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_owned())
}

/// True when `dir` is the top of a git work tree, not a source tarball unpacked
/// somewhere inside another repository (whose commit would be wrong here).
fn own_checkout(dir: &Path) -> bool {
    let top = git(dir, &["rev-parse", "--show-toplevel"]).map(PathBuf::from);
    match (top.and_then(|t| t.canonicalize().ok()), dir.canonicalize()) {
        (Some(top), Ok(dir)) => top == dir,
        _ => false,
    }
}

/// Re-runs the build script when HEAD is switched or its branch moves: HEAD,
/// the branch's ref (loose or packed) and HEAD's reflog, which also catches a
/// commit that creates a loose ref for a packed branch. Only existing files are
/// named, as cargo re-runs every time for a missing one. The paths come from
/// git because a worktree keeps HEAD and the shared refs apart.
fn watch_head(dir: &Path) {
    let mut files = vec!["HEAD", "logs/HEAD", "packed-refs"];
    let branch = git(dir, &["symbolic-ref", "-q", "HEAD"]);
    files.extend(branch.as_deref());
    for file in files {
        // Relative to `dir` unless absolute, as for a worktree.
        if let Some(path) = git(dir, &["rev-parse", "--git-path", file]).map(|p| dir.join(p)) {
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
}

/// The UTC calendar date of a Unix time, as YYYY-MM-DD (Howard Hinnant's
/// days-to-civil algorithm, to need no date crate in the build).
fn date(epoch: i64) -> String {
    let z = epoch.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}
