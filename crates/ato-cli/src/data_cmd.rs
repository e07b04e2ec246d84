//! `ato data …`: generate the synthetic set, fetch CIFAR, check a CIFAR folder.

use std::path::PathBuf;

use anyhow::Context;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Subcommand, ValueEnum};

use ato_data::{check_cifar_dir, fetch_cifar, write_synth, CifarFormat, SynthSize};

/// The data subcommands.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Write a synthetic data set in the exact CIFAR-10 / CIFAR-100 binary layout.
    Synth {
        /// Output folder; the CIFAR folder (cifar-10-batches-bin or cifar-100-binary) is
        /// created inside it.
        #[arg(long)]
        out: PathBuf,
        /// Number of classes: 10 (CIFAR-10 layout) or 100 (CIFAR-100 layout).
        #[arg(
            long,
            default_value_t = 10,
            value_parser = PossibleValuesParser::new(["10", "100"]).map(|s| s.parse::<usize>().unwrap_or(10))
        )]
        classes: usize,
        /// Training images (default: 10,000 for 10 classes, 20,000 for 100).
        #[arg(long)]
        train: Option<usize>,
        /// Test images (default: 2,000 for 10 classes, 4,000 for 100).
        #[arg(long)]
        test: Option<usize>,
        /// Seed: the same seed writes byte-identical files.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Download, verify (MD5) and extract the official CIFAR binary archive.
    Fetch {
        /// Which data set.
        dataset: FetchTarget,
        /// Data root; the archive is extracted to ROOT/cifar-10-batches-bin or
        /// ROOT/cifar-100-binary.
        #[arg(long, default_value = "data")]
        root: PathBuf,
    },
    /// Validate a CIFAR-format folder (files, record counts, label ranges).
    Check {
        /// A cifar-10-batches-bin / cifar-100-binary folder, or a folder holding one.
        dir: PathBuf,
    },
}

/// Data sets `ato data fetch` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FetchTarget {
    Cifar10,
    Cifar100,
}

/// Runs one data subcommand.
pub fn run(cmd: DataCommand) -> anyhow::Result<()> {
    match cmd {
        DataCommand::Synth {
            out,
            classes,
            train,
            test,
            seed,
        } => {
            let defaults = SynthSize::default_for(classes);
            let size = SynthSize {
                train: train.unwrap_or(defaults.train),
                test: test.unwrap_or(defaults.test),
            };
            let started = std::time::Instant::now();
            let dir = write_synth(&out, classes, size, seed)
                .with_context(|| format!("writing synthetic data to {}", out.display()))?;
            let summary = check_cifar_dir(&dir)?;
            println!(
                "wrote in {:.1}s: {summary}",
                started.elapsed().as_secs_f64()
            );
        }
        DataCommand::Fetch { dataset, root } => {
            let format = match dataset {
                FetchTarget::Cifar10 => CifarFormat::Cifar10,
                FetchTarget::Cifar100 => CifarFormat::Cifar100,
            };
            let folder = fetch_cifar(format, &root, true, true)?;
            println!("{}", check_cifar_dir(&folder)?);
        }
        DataCommand::Check { dir } => {
            println!("{}", check_cifar_dir(&dir)?);
        }
    }
    Ok(())
}
