//! How long the emulated cluster takes to start and stop: prints one line per
//! run and the median, for each family.

use anyhow::Result;
use clap::Parser;
use gpemu_harness::{ClusterSpec, Family};
use std::time::Instant;

#[derive(Parser)]
struct Args {
    /// Primary segments per cluster.
    #[arg(long, default_value_t = 16)]
    segments: usize,
    /// Runs per family.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

fn main() -> Result<()> {
    let args = Args::parse();
    println!("family  segments  start_s  stop_s");
    for family in Family::ALL {
        let mut starts = Vec::new();
        let mut stops = Vec::new();
        for _ in 0..args.runs {
            let t0 = Instant::now();
            let cluster = ClusterSpec::new(family, args.segments).start()?;
            let started = t0.elapsed().as_secs_f64();
            let t1 = Instant::now();
            drop(cluster);
            let stopped = t1.elapsed().as_secs_f64();
            println!(
                "{family:<6}  {:>8}  {started:>7.2}  {stopped:>6.2}",
                args.segments
            );
            starts.push(started);
            stops.push(stopped);
        }
        println!(
            "{family:<6}  median    {:>7.2}  {:>6.2}",
            median(&mut starts),
            median(&mut stops)
        );
    }
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
