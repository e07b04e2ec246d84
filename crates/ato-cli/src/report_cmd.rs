//! `ato report DIR`: the arguments of [`ato_report::write_report`] and its one line of output.

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
#[command(after_help = "\
Regenerate a report after a sweep: `ato report results/demo` writes paper/demo.md and \
paper/figures/demo/*.png. Only finished runs enter the tables; failed runs are listed.")]
pub struct ReportArgs {
    /// A sweep's results folder, e.g. results/demo (it holds summary.csv).
    pub dir: PathBuf,
    /// Where the report goes.
    #[arg(long, default_value = "paper")]
    pub out: PathBuf,
    /// Report name (file `<out>/<name>.md`) [default: the folder name].
    #[arg(long)]
    pub name: Option<String>,
}

pub fn run_cmd(args: &ReportArgs) -> Result<()> {
    let w = ato_report::write_report(&args.dir, &args.out, args.name.as_deref())?;
    println!(
        "wrote {} ({} runs, {} figures in {})",
        w.path.display(),
        w.runs,
        w.figures,
        w.figures_dir.display()
    );
    for line in &w.cost_lines {
        println!("{line}");
    }
    Ok(())
}
