//! The download path without a network: refusal when downloading is off, one clear error
//! line on connection failure, and checksum/extraction from an archive placed by hand.

use std::fs;
use std::net::TcpListener;

use ato_data::{fetch_archive, write_cifar_file, ArchiveSource, CifarFormat, DataError};

/// A local URL nobody listens on (bind a port, then free it): connection refused.
fn refused_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/cifar-10-binary.tar.gz")
}

#[test]
fn nothing_is_downloaded_unless_allowed() {
    let root = tempfile::tempdir().unwrap();
    let source = ArchiveSource {
        url: refused_url(),
        ..ArchiveSource::official(CifarFormat::Cifar10)
    };
    let err = fetch_archive(&source, root.path(), false, false).unwrap_err();
    assert!(matches!(err, DataError::DownloadDisabled { .. }), "{err:?}");
    let message = err.to_string();
    assert!(!message.contains('\n'));
    assert!(message.contains("cifar-10-binary.tar.gz") && message.contains("data_batch_1.bin"));
    assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);
}

#[test]
fn no_network_gives_one_line_saying_where_to_put_which_files() {
    let root = tempfile::tempdir().unwrap();
    let source = ArchiveSource {
        url: refused_url(),
        ..ArchiveSource::official(CifarFormat::Cifar100)
    };
    let err = fetch_archive(&source, root.path(), true, false).unwrap_err();
    assert!(matches!(err, DataError::Download { .. }), "{err:?}");
    let message = err.to_string();
    assert!(!message.contains('\n'), "{message}");
    for needle in [
        "127.0.0.1",
        "cifar-100-binary.tar.gz",
        "cifar-100-binary",
        "train.bin",
        "test.bin",
    ] {
        assert!(message.contains(needle), "{needle} missing from: {message}");
    }
    assert!(!root.path().join("cifar-100-binary").exists());
}

/// Builds a real `.tar.gz` holding a tiny CIFAR-10 folder.
fn tiny_archive(dir: &std::path::Path) -> std::path::PathBuf {
    let staging = dir.join("staging/cifar-10-batches-bin");
    fs::create_dir_all(&staging).unwrap();
    let pixels = vec![7u8; 2 * 3072];
    for name in CifarFormat::Cifar10.all_files() {
        write_cifar_file(
            &staging.join(name),
            CifarFormat::Cifar10,
            &pixels,
            &[1, 2],
            None,
        )
        .unwrap();
    }
    let archive = dir.join("archive.tar.gz");
    let gz = flate2::write::GzEncoder::new(fs::File::create(&archive).unwrap(), Default::default());
    let mut tar = tar::Builder::new(gz);
    tar.append_dir_all("cifar-10-batches-bin", &staging)
        .unwrap();
    tar.into_inner().unwrap().finish().unwrap();
    archive
}

#[test]
fn a_hand_placed_archive_is_verified_then_extracted() {
    let work = tempfile::tempdir().unwrap();
    let archive = tiny_archive(work.path());
    let md5 = ato_data::fetch::md5_hex(&archive).unwrap();
    let root = work.path().join("data");
    fs::create_dir_all(&root).unwrap();
    fs::copy(&archive, root.join("cifar-10-binary.tar.gz")).unwrap();

    let wrong = ArchiveSource {
        url: refused_url(),
        ..ArchiveSource::official(CifarFormat::Cifar10)
    };
    let err = fetch_archive(&wrong, &root, false, false).unwrap_err();
    assert!(matches!(err, DataError::Checksum { .. }), "{err:?}");
    assert!(!root.join("cifar-10-batches-bin").exists());

    let right = ArchiveSource { md5, ..wrong };
    let folder = fetch_archive(&right, &root, false, false).unwrap();
    assert_eq!(folder, root.join("cifar-10-batches-bin"));
    let summary = ato_data::check_cifar_dir(&root).unwrap();
    assert_eq!((summary.train_count, summary.test_count), (10, 2));
    // No staging folders are left behind.
    let leftovers: Vec<_> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn opening_absent_cifar_without_download_names_the_files_and_the_switch() {
    let root = tempfile::tempdir().unwrap();
    let spec = ato_data::DatasetSpec::new(ato_data::DatasetName::Cifar100, root.path());
    let err = ato_data::Dataset::open(&spec, ato_data::Split::Train).unwrap_err();
    assert!(matches!(err, DataError::DownloadDisabled { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("dataset.download") && message.contains("train.bin"),
        "{message}"
    );
}
