//! `editshard convert --preset NAME | --mapping FILE.toml SOURCE --out DEST`.

use std::process::ExitCode;

use super::convert::{ConvertArgs, already_complete, parse_format_version, parse_part, parse_size};
use editshard::error::{Error, Result};
use editshard_convert::hub::{self, HubOptions};
use editshard_convert::session::Outcome;
use editshard_hub::Mapping;

pub fn run(args: &ConvertArgs) -> Result<ExitCode> {
    let (mapping, origin) = match (&args.preset, &args.mapping) {
        (Some(name), _) => (Mapping::preset(name)?, format!("preset {name}")),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::from(e).in_shard(path.display().to_string()))?;
            (Mapping::parse(&text, &path.display().to_string())?, text)
        }
        (None, None) => return Err(Error::bug("no preset and no mapping")),
    };
    let Some(source) = args.release.clone() else {
        return Err(Error::invalid(
            "--preset/--mapping: name the dataset's directory (as downloaded from the Hub) or \
             its https:// base: editshard convert --preset NAME SOURCE --out DEST",
        ));
    };
    let opts = HubOptions {
        mapping,
        mapping_origin: origin,
        source,
        out: args.out.clone(),
        files_from: args.files_from.clone(),
        revision: args.revision.clone(),
        shard_size: parse_size(&args.shard_size)?,
        format_minor: parse_format_version(&args.format_version)?,
        batch_memory: parse_size(&args.batch_memory)?,
        max_image_bytes: parse_size(&args.max_image_size)?,
        part: args.part.as_deref().map(parse_part).transpose()?,
        retry_failed: args.retry_failed,
        s3_endpoint: args.s3_endpoint.clone(),
        work_dir: args.work_dir.clone(),
        break_lock: args.break_lock,
    };
    let s = match super::runtime()?.block_on(hub::convert(&opts))? {
        Outcome::Converted(s) => s,
        Outcome::AlreadyComplete(c) => return Ok(already_complete(&c, args.allow_failures)),
    };
    println!("editshard convert summary ({})", opts.mapping.name);
    println!("  files               {}", s.files);
    println!("  rows read           {}", s.rows);
    println!("  records written     {}", s.records);
    println!("  failed rows         {}", s.failed);
    println!("  session splits      {}", s.session_splits);
    println!("  shards              {} ({} bytes)", s.shards, s.bytes);
    if s.resumed_at_row > 0 {
        println!("  resumed at row      {}", s.resumed_at_row);
    }
    println!("  wall time           {:.2} s", s.wall_secs);
    if s.failed > 0 {
        eprintln!(
            "editshard convert: {} rows failed; see {}/failures.jsonl{}",
            s.failed,
            s.dest,
            if args.allow_failures {
                ""
            } else {
                " (pass --allow-failures to exit 0)"
            }
        );
        if !args.allow_failures {
            return Ok(ExitCode::from(super::EXIT_PROBLEMS));
        }
    }
    Ok(ExitCode::SUCCESS)
}
