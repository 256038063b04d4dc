//! The sealed datagram: its exact bytes, what fails authentication, and a receiver's refusals.

use crate::seal::{HEADER_LEN, Header, Key, KeyError, OVERHEAD, Receiver, Reject, Sender, TAG_LEN};

const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const PACKET: &[u8] = b"an IP packet, say";
/// `PACKET` sealed by sender 1 with counter 5 under the key 00..1f, as OpenSSL's ChaCha20-Poly1305 seals it (nonce
/// and AAD both the 12-byte header): header, ciphertext, tag.
const SEALED: &str = "000000010000000000000005\
                      2484fe0c3c9a3ab3ab36a588f80ef49c8d\
                      03d53375ee2e326dd13ef0f97bae7b6f";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn key() -> Key {
    Key::from_hex(KEY_HEX).unwrap()
}

/// `packet` laid out for sealing: room for the header in front and the tag behind.
fn laid_out(packet: &[u8]) -> Vec<u8> {
    [&[0u8; HEADER_LEN][..], packet, &[0u8; TAG_LEN]].concat()
}

#[test]
fn sealing_gives_the_reference_bytes_and_opening_gives_the_packet_back() {
    assert_eq!(OVERHEAD, 28);
    let mut d = laid_out(PACKET);
    assert!(key().seal(1, 5, &mut d));
    assert_eq!(d, hex(SEALED));
    assert_eq!(key().open(&mut d), Ok(Header { sender: 1, counter: 5 }));
    assert_eq!(&d[HEADER_LEN..d.len() - TAG_LEN], PACKET);
}

#[test]
fn an_empty_packet_seals_and_a_shorter_datagram_does_not() {
    let mut d = vec![0u8; OVERHEAD];
    assert!(key().seal(7, 0, &mut d));
    assert_eq!(key().open(&mut d), Ok(Header { sender: 7, counter: 0 }));
    let mut short = vec![0xaau8; OVERHEAD - 1];
    assert!(!key().seal(7, 1, &mut short));
    assert_eq!(short, vec![0xaa; OVERHEAD - 1], "nothing written");
    assert_eq!(key().open(&mut short), Err(Reject::Truncated));
    assert_eq!(Header::parse(&short), Err(Reject::Truncated));
}

#[test]
fn another_key_or_any_changed_byte_fails_authentication_and_leaves_the_body() {
    let other = Key::from_hex(&KEY_HEX.replace("1f", "20")).unwrap();
    let sealed = hex(SEALED);
    let mut d = sealed.clone();
    assert_eq!(other.open(&mut d), Err(Reject::Unauthenticated));
    assert_eq!(d, sealed, "the ciphertext is not decrypted before the tag is checked");
    // Every single byte flipped: in the sender id, the counter (both the nonce and the AAD), the ciphertext, the tag.
    for i in 0..sealed.len() {
        let mut d = sealed.clone();
        d[i] ^= 0x01;
        assert_eq!(key().open(&mut d), Err(Reject::Unauthenticated), "byte {i} changed");
    }
}

#[test]
fn the_two_directions_never_share_a_nonce() {
    let (a, b) = (Sender::new(1), Sender::new(2));
    let (mut da, mut db) = (laid_out(PACKET), laid_out(PACKET));
    assert_eq!((a.seal(&key(), &mut da), b.seal(&key(), &mut db)), (Some(0), Some(0)));
    assert_eq!((&da[..4], &db[..4]), (&[0, 0, 0, 1][..], &[0, 0, 0, 2][..]));
    // Same key, same counter, same packet: another nonce, so another keystream.
    assert_ne!(da[HEADER_LEN..da.len() - TAG_LEN], db[HEADER_LEN..db.len() - TAG_LEN]);
}

#[test]
fn a_sender_counts_up_from_zero_and_skips_nothing_on_a_short_buffer() {
    let s = Sender::new(9);
    let mut short = vec![0u8; OVERHEAD - 1];
    assert_eq!(s.seal(&key(), &mut short), None);
    let counters: Vec<_> = (0..3)
        .map(|_| {
            let mut d = laid_out(PACKET);
            let c = s.seal(&key(), &mut d);
            (c, Header::parse(&d).unwrap().counter)
        })
        .collect();
    assert_eq!(counters, [(Some(0), 0), (Some(1), 1), (Some(2), 2)]);
}

#[test]
fn a_receiver_refuses_replays_reflections_and_forgeries_without_moving_its_window() {
    let (a, b) = (Sender::new(1), Sender::new(2));
    let from_a = Receiver::new(1);
    let seal = |s: &Sender| {
        let mut d = laid_out(PACKET);
        s.seal(&key(), &mut d).unwrap();
        d
    };
    let first: Vec<Vec<u8>> = (0..12).map(|_| seal(&a)).collect();
    // Counter 10 first, then 3: reordered, both fine, and the packet is opened in place.
    let mut d = first[10].clone();
    assert_eq!(from_a.open(&key(), &mut d), Ok(Header { sender: 1, counter: 10 }));
    assert_eq!(&d[HEADER_LEN..d.len() - TAG_LEN], PACKET);
    assert_eq!(from_a.open(&key(), &mut first[3].clone()), Ok(Header { sender: 1, counter: 3 }));
    // The same datagram again.
    assert_eq!(from_a.open(&key(), &mut first[10].clone()), Err(Reject::Replayed));
    assert_eq!(from_a.open(&key(), &mut first[3].clone()), Err(Reject::Replayed));
    // What this node sealed itself, reflected back: authentic under the key, but not the peer's.
    assert_eq!(from_a.open(&key(), &mut seal(&b)), Err(Reject::WrongSender));
    // A forgery far ahead: refused, and the window stays where it was, so counter 4 is still new.
    let mut forged = first[11].clone();
    forged[4..HEADER_LEN].copy_from_slice(&1_000_000u64.to_be_bytes());
    assert_eq!(from_a.open(&key(), &mut forged), Err(Reject::Unauthenticated));
    assert_eq!(from_a.open(&key(), &mut first[4].clone()), Ok(Header { sender: 1, counter: 4 }));
    // A truncated datagram.
    assert_eq!(from_a.open(&key(), &mut first[5][..OVERHEAD - 1].to_vec()), Err(Reject::Truncated));
    // Under another key: unauthenticated, and counter 5 stays open for the genuine datagram.
    let other = Key::from_bytes(&[7; 32]);
    assert_eq!(from_a.open(&other, &mut first[5].clone()), Err(Reject::Unauthenticated));
    assert_eq!(from_a.open(&key(), &mut first[5].clone()), Ok(Header { sender: 1, counter: 5 }));
}

#[test]
fn keys_come_from_64_hex_digits_in_either_case_or_from_a_file() {
    let sealed_with = |k: &Key| {
        let mut d = laid_out(PACKET);
        assert!(k.seal(1, 5, &mut d));
        d
    };
    let upper = Key::from_hex(&format!("  {}\n", KEY_HEX.to_uppercase())).unwrap();
    assert_eq!(sealed_with(&upper), hex(SEALED));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("psk.hex");
    std::fs::write(&path, format!("{KEY_HEX}\n")).unwrap();
    assert_eq!(sealed_with(&Key::from_file(&path).unwrap()), hex(SEALED));
    assert_eq!(format!("{upper:?}"), "Key(..)", "the key does not show");

    let err = |text: &str| Key::from_hex(text).unwrap_err().to_string();
    assert_eq!(err(&KEY_HEX[..62]), "a key is 64 hex digits, not 62 characters");
    assert_eq!(err(""), "a key is 64 hex digits, not 0 characters");
    assert_eq!(err(&format!("{}g", &KEY_HEX[..63])), "a key is hex digits only: character 63 is not one");
    assert!(matches!(Key::from_hex(&format!("x{}", &KEY_HEX[1..])), Err(KeyError::NotHex { at: 0 })));
    let missing = dir.path().join("none");
    let e = Key::from_file(&missing).unwrap_err();
    assert!(matches!(&e, KeyError::Read { path, .. } if *path == missing), "{e:?}");
    assert!(e.to_string().starts_with(&format!("cannot read the key file {}: ", missing.display())), "{e}");
}
