//! The benchmark run: `cargo run --release -p fuzz -- [--inputs N] [--seed S] [--target NAME]`.
//! Runs every target (or the one named) and prints a Markdown table; exits
//! 1 when any input panicked or broke a property, after printing it.

use std::process::ExitCode;

use fuzz::{ContractBody, Normalise, OrderList, Report, RetryAfter, Webhook, run, table};

struct Args {
    inputs: u64,
    seed: u64,
    target: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        inputs: 1_000_000,
        seed: 0x5EED,
        target: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            let digits = value.trim_start_matches("0x");
            let radix = if digits.len() < value.len() { 16 } else { 10 };
            u64::from_str_radix(&digits.replace('_', ""), radix)
                .map_err(|e| format!("{flag} {value}: {e}"))
        };
        match flag.as_str() {
            "--inputs" => args.inputs = number()?,
            "--seed" => args.seed = number()?,
            "--target" => args.target = Some(value),
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(err) => {
            eprintln!("{err}\nusage: fuzz [--inputs N] [--seed S] [--target NAME]");
            return ExitCode::from(2);
        }
    };
    let webhook = match Webhook::new() {
        Ok(webhook) => webhook,
        Err(err) => {
            eprintln!("the fuzz shop configuration is invalid: {err}");
            return ExitCode::from(2);
        }
    };
    let wanted = |name: &str| args.target.as_deref().is_none_or(|t| t == name);
    let mut reports: Vec<Report> = Vec::new();
    let mut go = |report: Report| {
        eprintln!(
            "{}: {} inputs in {:.1?}, {} panics, {} violations",
            report.target, report.inputs, report.elapsed, report.panics, report.violations
        );
        reports.push(report);
    };
    if wanted("webhook") {
        go(run(&webhook, args.seed, args.inputs));
    }
    if wanted("order normalisation") {
        go(run(&Normalise, args.seed, args.inputs));
    }
    if wanted("shop order list") {
        go(run(&OrderList, args.seed, args.inputs));
    }
    if wanted("contract body") {
        go(run(&ContractBody, args.seed, args.inputs));
    }
    if wanted("Retry-After") {
        go(run(&RetryAfter, args.seed, args.inputs));
    }
    println!("seed {:#x}\n\n{}", args.seed, table(&reports));
    let mut failed = false;
    for report in &reports {
        for failure in &report.failures {
            println!("{}: {failure}", report.target);
            failed = true;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
