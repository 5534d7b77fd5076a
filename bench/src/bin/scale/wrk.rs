//! /metrics under load: `wrk` with many concurrent clients.

use crate::procs::{Cpu, Guard};
use anyhow::{Context, Result};
use serde::Serialize;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

#[derive(Clone, Debug, Default, Serialize)]
pub struct Load {
    pub gzip: bool,
    pub connections: usize,
    pub seconds: u64,
    pub requests: u64,
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    /// Socket errors (connect, read, write, timeout) and non-2xx answers.
    pub errors: u64,
    pub transfer_per_second: String,
    /// The exporter's CPU during the run divided by the requests served
    /// (collection rounds that ran meanwhile included).
    pub exporter_cpu_us_per_request: f64,
}

pub async fn run(
    url: &str,
    gzip: bool,
    connections: usize,
    threads: usize,
    seconds: u64,
    exporter_pid: i32,
) -> Result<Load> {
    let mut cmd = Command::new("wrk");
    cmd.arg(format!("-t{threads}"))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"))
        .args(["--timeout", "10s", "--latency"]);
    if gzip {
        cmd.args(["-H", "Accept-Encoding: gzip"]);
    }
    cmd.arg(url).stdout(Stdio::piped()).stderr(Stdio::piped());
    let cpu0 = Cpu::read(exporter_pid)?;
    let mut guard = Guard::spawn(&mut cmd, "wrk (apt-get install wrk)")?;
    let status = guard
        .wait(Duration::from_secs(seconds + 30))
        .await
        .context("waiting for wrk")?;
    let cpu = Cpu::read(exporter_pid)?.sched_seconds_since(&cpu0);
    let mut text = String::new();
    if let Some(mut out) = guard.child_mut().stdout.take() {
        out.read_to_string(&mut text)?;
    }
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = guard.child_mut().stderr.take() {
            e.read_to_string(&mut err)?;
        }
        anyhow::bail!("wrk failed ({status}): {text}{err}");
    }
    let mut load = parse(&text);
    load.gzip = gzip;
    load.connections = connections;
    load.seconds = seconds;
    if load.requests > 0 {
        load.exporter_cpu_us_per_request = cpu * 1e6 / load.requests as f64;
    }
    Ok(load)
}

fn parse(text: &str) -> Load {
    let mut l = Load::default();
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", v] => l.p50_ms = millis(v),
            ["90%", v] => l.p90_ms = millis(v),
            ["99%", v] => l.p99_ms = millis(v),
            ["Requests/sec:", v] => l.requests_per_second = v.parse().unwrap_or(0.0),
            ["Transfer/sec:", v] => l.transfer_per_second = (*v).to_owned(),
            [n, "requests", "in", ..] => l.requests = n.parse().unwrap_or(0),
            ["Non-2xx", "or", "3xx", "responses:", n] => l.errors += n.parse().unwrap_or(0),
            ["Socket", "errors:", rest @ ..] => {
                l.errors += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    l
}

/// wrk's durations: `635.91us`, `1.20ms`, `2.00s`, `1.00m`.
fn millis(v: &str) -> f64 {
    let split = v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let x: f64 = num.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => x / 1e3,
        "ms" => x,
        "s" => x * 1e3,
        "m" => x * 60e3,
        "h" => x * 3600e3,
        _ => f64::NAN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk_output() {
        let text = "Running 5s test @ http://127.0.0.1:1/metrics
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.23ms  300.00us   9.00ms   90.00%
  Latency Distribution
     50%  635.91us
     75%    1.20ms
     90%    1.50ms
     99%    2.10s
  12345 requests in 5.00s, 1.23GB read
  Socket errors: connect 0, read 1, write 0, timeout 5
  Non-2xx or 3xx responses: 3
Requests/sec:   2469.00
Transfer/sec:    246.90MB
";
        let l = parse(text);
        assert!((l.p50_ms - 0.63591).abs() < 1e-9);
        assert_eq!(l.p90_ms, 1.5);
        assert_eq!(l.p99_ms, 2100.0);
        assert_eq!(l.requests, 12345);
        assert_eq!(l.errors, 9);
        assert_eq!(l.requests_per_second, 2469.0);
        assert_eq!(l.transfer_per_second, "246.90MB");
    }
}
