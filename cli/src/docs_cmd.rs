//! `berth completion SHELL` and `berth man`: the shell completions and
//! the man pages, made from the command tree itself (so they never drift
//! from `--help`). `make install` installs them.

use std::path::PathBuf;

use anyhow::Context;

/// The shells berth writes completions for.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Shell {
    /// bash (bash-completion's completions directory).
    Bash,
    /// zsh (a _berth file on $fpath).
    Zsh,
    /// fish (fish's vendor_completions.d).
    Fish,
}

/// `berth man`'s flags.
#[derive(clap::Args)]
pub struct ManArgs {
    /// Write berth.1 and a page for every verb (berth-run-task.1 …) into
    /// DIR instead of printing berth.1.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Print the completion script for `shell` on stdout.
pub fn completion(shell: Shell, mut cmd: clap::Command) -> anyhow::Result<i32> {
    use clap_complete::Shell as S;
    let shell = match shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "berth", &mut script);
    crate::output::stdout(&script).context("write the completion script")?;
    Ok(0)
}

/// Print berth.1, or write every page into `--dir`.
pub fn man(args: ManArgs, cmd: clap::Command) -> anyhow::Result<i32> {
    match args.dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("--dir {}: create", dir.display()))?;
            clap_mangen::generate_to(cmd, &dir)
                .with_context(|| format!("--dir {}: write the man pages", dir.display()))?;
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut page)
                .context("render the man page")?;
            crate::output::stdout(&page).context("write the man page")?;
        }
    }
    Ok(0)
}
