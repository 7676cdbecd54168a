//! `kizuna validate FILE...`: checks STIX 2.1 files (a bundle, a TAXII envelope, a single object, a
//! JSON array or JSON lines) and reports on every object.
//!
//! Files are read whole, but objects are parsed and validated one at a time, so memory stays near
//! the size of the file even for bundles of millions of objects. `-` reads standard input.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use kizuna_stix::{InputObject, Problem, for_each_object, validate_object_with};
use serde_json::{Value, json};

/// Arguments of `kizuna validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// STIX files: a bundle, a TAXII envelope, a single object, a JSON array of objects, or JSON
    /// lines. `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print the report as one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
    /// Print only invalid objects and the summary.
    #[arg(long, short)]
    pub quiet: bool,
}

/// What happened to one object.
struct ObjectReport {
    id: Option<String>,
    line: usize,
    index: Option<usize>,
    problems: Vec<Problem>,
}

/// What happened to one file: its objects, or why it could not be read.
struct FileReport {
    name: String,
    objects: Vec<ObjectReport>,
    error: Option<String>,
}

/// Runs `kizuna validate`: exit status 0 when every object of every file is valid, 1 otherwise
/// (an unreadable or malformed file counts as invalid).
pub fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let reports: Vec<FileReport> = args.files.iter().map(check_file).collect();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if args.json {
        write_json(&mut out, &reports)?;
    } else {
        write_text(&mut out, &reports, args.quiet)?;
    }
    out.flush()?;
    let all_valid = reports
        .iter()
        .all(|f| f.error.is_none() && f.objects.iter().all(|o| o.problems.is_empty()));
    Ok(if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn check_file(path: &PathBuf) -> FileReport {
    let name = path.display().to_string();
    let text = if name == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map(|_| s)
    } else {
        std::fs::read_to_string(path)
    };
    let text = match text {
        Ok(t) => t,
        Err(e) => {
            return FileReport {
                name,
                objects: Vec::new(),
                error: Some(format!("cannot read: {e}")),
            };
        }
    };
    let mut objects = Vec::new();
    let result = for_each_object(&text, |o: InputObject<'_>| {
        objects.push(ObjectReport {
            id: o.value.get("id").and_then(Value::as_str).map(str::to_owned),
            line: o.location.line,
            index: o.location.index,
            problems: validate_object_with(&o.value, &kizuna_pattern::check_indicator_pattern),
        });
    });
    let error = match result {
        Err(e) => Some(e.to_string()),
        Ok(()) if objects.is_empty() => Some("no STIX object found".to_owned()),
        Ok(()) => None,
    };
    FileReport {
        name,
        objects,
        error,
    }
}

fn label(o: &ObjectReport) -> String {
    match (&o.id, o.index) {
        (Some(id), _) => id.clone(),
        (None, Some(i)) => format!("<object [{i}] without a valid id>"),
        (None, None) => "<object without a valid id>".to_owned(),
    }
}

fn write_text(out: &mut impl Write, reports: &[FileReport], quiet: bool) -> std::io::Result<()> {
    let (mut valid, mut invalid, mut bad_files) = (0usize, 0usize, 0usize);
    for f in reports {
        for o in &f.objects {
            if o.problems.is_empty() {
                valid += 1;
                if !quiet {
                    writeln!(out, "OK {}", label(o))?;
                }
                continue;
            }
            invalid += 1;
            writeln!(out, "INVALID {} ({}:{})", label(o), f.name, o.line)?;
            for p in &o.problems {
                let path = if p.path.is_empty() {
                    "(object)"
                } else {
                    &p.path
                };
                writeln!(out, "  {path}: {}", p.message)?;
            }
        }
        if let Some(e) = &f.error {
            bad_files += 1;
            writeln!(out, "ERROR {}: {e}", f.name)?;
        }
    }
    write!(
        out,
        "{} object{}: {valid} valid, {invalid} invalid",
        valid + invalid,
        if valid + invalid == 1 { "" } else { "s" }
    )?;
    if bad_files > 0 {
        write!(out, "; {bad_files} file(s) could not be read")?;
    }
    writeln!(out)
}

fn write_json(out: &mut impl Write, reports: &[FileReport]) -> anyhow::Result<()> {
    let (mut valid, mut invalid) = (0usize, 0usize);
    let files: Vec<Value> = reports
        .iter()
        .map(|f| {
            let objects: Vec<Value> = f
                .objects
                .iter()
                .map(|o| {
                    if o.problems.is_empty() {
                        valid += 1;
                    } else {
                        invalid += 1;
                    }
                    json!({
                        "id": o.id,
                        "line": o.line,
                        "index": o.index,
                        "valid": o.problems.is_empty(),
                        "problems": o.problems.iter().map(|p| json!({
                            "path": p.path,
                            "message": p.message,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            json!({ "file": f.name, "error": f.error, "objects": objects })
        })
        .collect();
    let unreadable = reports.iter().filter(|f| f.error.is_some()).count();
    let doc = json!({
        "files": files,
        "summary": { "objects": valid + invalid, "valid": valid, "invalid": invalid, "unreadable_files": unreadable },
    });
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)?;
    Ok(())
}
