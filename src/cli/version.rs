//! `--version`: the build block Prometheus and its exporters print, from
//! what `build.rs` stamped into the binary.

/// E.g.
/// ```text
/// greenplum_segment_exporter, version 0.1.0 (branch: main, revision: 1a2b3c4)
///   build user:       builder@host
///   build date:       20261203-07:59:00
///   rust version:     1.91.0
///   platform:         linux/amd64
/// ```
pub fn block() -> String {
    format!(
        "greenplum_segment_exporter, version {} (branch: {}, revision: {})\n\
         \x20 build user:       {}\n\
         \x20 build date:       {}\n\
         \x20 rust version:     {}\n\
         \x20 platform:         {}\n",
        env!("CARGO_PKG_VERSION"),
        env!("GPSE_GIT_BRANCH"),
        env!("GPSE_GIT_COMMIT"),
        env!("GPSE_BUILD_USER"),
        env!("GPSE_BUILD_TIME"),
        env!("GPSE_RUST_VERSION"),
        env!("GPSE_PLATFORM"),
    )
}
