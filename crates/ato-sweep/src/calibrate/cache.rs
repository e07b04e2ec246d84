//! The matched-FLOPs cache of a sweep folder: [`CalibrationCache`] over `calibration.csv` (one
//! row per search: load, lookup, upsert, save) and [`record_pilots`] for
//! `calibration_pilots.csv` (every pilot of every search, in search order).

use super::search::SearchStatus;
use super::PILOTS_FILE;
use super::{CalibrationRow, MatchSettings, SearchPilot, CALIBRATION_FILE, OTOV2_MAX_LAMBDA};
use anyhow::{anyhow, Result};
use ato_train::{read_csv, write_csv_atomically, Method};
use std::path::{Path, PathBuf};

/// The rows of a sweep's `calibration.csv`.
#[derive(Clone, Debug)]
pub struct CalibrationCache {
    path: PathBuf,
    rows: Vec<CalibrationRow>,
}

impl CalibrationCache {
    /// The cache of the sweep folder `dir` (empty when it has no `calibration.csv` yet).
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(CALIBRATION_FILE);
        let rows = if path.is_file() {
            read_csv(&path)?
        } else {
            Vec::new()
        };
        Ok(Self { path, rows })
    }

    pub fn rows(&self) -> &[CalibrationRow] {
        &self.rows
    }

    /// The row of search `key` for `reference` that still answers under `settings`: the same
    /// reference; OTOv2's λ within the authors' range; a match only while it is as close as
    /// `settings.tolerance`; a jump or an unreachable budget (conclusions about the response)
    /// while they are still a miss, a jump only with its near range; a search that ran out of
    /// pilots only when `settings.max_pilots` is no larger. By-construction rows always answer.
    pub fn lookup(
        &self,
        key: &str,
        reference: f64,
        settings: &MatchSettings,
    ) -> Option<&CalibrationRow> {
        let within =
            |c: &CalibrationRow| (c.achieved - reference).abs() <= settings.tolerance + 1e-12;
        self.rows.iter().find(|c| {
            c.key == key
                && (c.reference - reference).abs() < 1e-9
                && c.lambda.is_none_or(|l| l <= OTOV2_MAX_LAMBDA)
                && match c.status {
                    SearchStatus::ByConstruction => true,
                    SearchStatus::Matched => within(c),
                    SearchStatus::Unreachable => !within(c),
                    // rows concluded at the older, wider jump width lack their near range
                    SearchStatus::Jump => !within(c) && c.near_low.is_some(),
                    SearchStatus::Closest => c.pilots >= settings.max_pilots,
                }
        })
    }

    /// A match found for the same search at another reference that moved by at most
    /// `settings.tolerance` (the matching band, ±1 point by default) and still lands within
    /// the tolerance of `reference`: the knob it found answers again, without a pilot (issue
    /// 32: a reference that moves by a last-bit difference of another CPU must not restart
    /// a search). `key_at(r)` is the search's key at reference r. A larger move, or a match
    /// that no longer lands, is searched again; conclusions other than a match (a jump, an
    /// unreachable budget, a search that ran out of pilots) answer only at their own reference.
    pub fn lookup_moved(
        &self,
        key_at: impl Fn(f64) -> String,
        reference: f64,
        settings: &MatchSettings,
    ) -> Option<&CalibrationRow> {
        let band = settings.tolerance + 1e-12;
        self.rows.iter().find(|c| {
            c.status == SearchStatus::Matched
                && (c.reference - reference).abs() <= band
                && (c.achieved - reference).abs() <= band
                && c.lambda.is_none_or(|l| l <= OTOV2_MAX_LAMBDA)
                && c.key == key_at(c.reference)
        })
    }

    /// Among the rows of `keys` (the same search at other seeds), the one whose reference is
    /// closest to `reference`: where a new search starts.
    pub fn closest(&self, keys: &[String], reference: f64) -> Option<&CalibrationRow> {
        self.rows
            .iter()
            .filter(|c| keys.contains(&c.key))
            .min_by(|a, b| {
                (a.reference - reference)
                    .abs()
                    .total_cmp(&(b.reference - reference).abs())
            })
    }

    /// Puts `row` in place of the row with its key; whether the cache changed.
    pub fn upsert(&mut self, row: CalibrationRow) -> bool {
        if self.rows.contains(&row) {
            return false;
        }
        self.rows.retain(|c| c.key != row.key);
        self.rows.push(row);
        true
    }

    /// By-construction rows of `key` at `reference` record `measured` in place of the
    /// reference they aimed at; whether any changed.
    pub fn record_measured(&mut self, key: &str, reference: f64, measured: f64) -> bool {
        let mut changed = false;
        for row in self.rows.iter_mut().filter(|c| {
            c.key == key
                && c.status == SearchStatus::ByConstruction
                && (c.reference - reference).abs() < 1e-9
        }) {
            if row.achieved != measured {
                row.achieved = measured;
                changed = true;
            }
        }
        changed
    }

    /// Writes `calibration.csv` whole (write-then-rename), creating the folder.
    pub fn save(&self) -> Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| anyhow!("{}: {e}", dir.display()))?;
        }
        write_csv_atomically(&self.path, &self.rows)?;
        Ok(())
    }
}

/// Replaces the pilots of search `key` in `dir`'s [`PILOTS_FILE`] by `trace` (knob value,
/// OTOv2's λ when raised, FLOPs reduction), numbered in search order.
pub fn record_pilots(
    dir: &Path,
    method: Method,
    key: &str,
    trace: &[(f64, Option<f64>, f64)],
) -> Result<()> {
    let path = dir.join(PILOTS_FILE);
    let mut rows: Vec<SearchPilot> = if path.is_file() {
        read_csv(&path)?
    } else {
        Vec::new()
    };
    rows.retain(|r| r.key != key);
    rows.extend(
        trace
            .iter()
            .enumerate()
            .map(|(i, &(value, lambda, achieved))| SearchPilot {
                method,
                key: key.into(),
                pilot: i + 1,
                value,
                lambda,
                achieved,
            }),
    );
    std::fs::create_dir_all(dir).map_err(|e| anyhow!("{}: {e}", dir.display()))?;
    write_csv_atomically(&path, &rows)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &str, status: SearchStatus, achieved: f64) -> CalibrationRow {
        CalibrationRow {
            method: Method::Oto,
            key: key.into(),
            knob: "oto.lambda".into(),
            value: 0.15,
            achieved,
            reference: 0.5,
            status,
            pilots: 4,
            lambda: None,
            near_low: None,
            near_high: None,
        }
    }

    const SETTINGS: MatchSettings = MatchSettings {
        pilot_epochs: None,
        max_pilots: 12,
        tolerance: 0.01,
    };

    #[test]
    fn rows_survive_a_save_and_answer_only_what_still_holds() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = CalibrationCache::load(dir.path()).unwrap();
        assert!(cache.rows().is_empty(), "no file yet: an empty cache");
        assert!(cache.upsert(row("a", SearchStatus::Matched, 0.505)));
        assert!(cache.upsert(row("b", SearchStatus::Matched, 0.52)));
        assert!(
            !cache.upsert(row("a", SearchStatus::Matched, 0.505)),
            "same row"
        );
        assert!(
            cache.upsert(row("a", SearchStatus::Matched, 0.498)),
            "replaced"
        );
        cache.save().unwrap();
        let back = CalibrationCache::load(dir.path()).unwrap();
        assert_eq!(back.rows(), cache.rows());
        assert_eq!(back.rows().len(), 2);
        assert_eq!(back.lookup("a", 0.5, &SETTINGS).unwrap().achieved, 0.498);
        // negative controls: another reference, a match no longer within the tolerance, an
        // unknown key
        assert!(back.lookup("a", 0.47, &SETTINGS).is_none());
        assert!(back.lookup("b", 0.5, &SETTINGS).is_none());
        assert!(back.lookup("c", 0.5, &SETTINGS).is_none());
        // out of pilots: answers only while no more pilots are allowed
        let mut c = back.clone();
        let mut out_of_pilots = row("d", SearchStatus::Closest, 0.53);
        out_of_pilots.pilots = 12;
        c.upsert(out_of_pilots);
        assert!(c.lookup("d", 0.5, &SETTINGS).is_some());
        let more = MatchSettings {
            max_pilots: 20,
            ..SETTINGS
        };
        assert!(c.lookup("d", 0.5, &more).is_none());
    }

    #[test]
    fn the_closest_reference_among_other_seeds_starts_a_search() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = CalibrationCache::load(dir.path()).unwrap();
        for (k, r, v) in [("s1", 0.40, 0.1), ("s2", 0.49, 0.2), ("s3", 0.58, 0.3)] {
            let mut x = row(k, SearchStatus::Matched, r);
            x.reference = r;
            x.value = v;
            cache.upsert(x);
        }
        let keys = ["s1".to_string(), "s3".to_string()];
        // s2 is closer but not among the keys; of s1 (0.10 away) and s3 (0.08), s3
        assert_eq!(cache.closest(&keys, 0.5).unwrap().value, 0.3);
        assert!(cache.closest(&[], 0.5).is_none());
    }
}
