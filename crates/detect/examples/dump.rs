//! Prints the `--observables` lines for the given mail paths (a debugging aid).

fn main() {
    let paths = std::env::args().skip(1).map(std::path::PathBuf::from);
    for r in kizuna_detect::MailSource::new(paths, kizuna_detect::MailOptions::default()) {
        match r {
            Ok(o) => println!("{:#}", o.to_json()),
            Err(e) => eprintln!("{e}"),
        }
    }
}
