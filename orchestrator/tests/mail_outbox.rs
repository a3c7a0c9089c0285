//! The outbox against a real SMTP server on loopback: a report is written to
//! the store before it is sent, a relay that is down leaves it queued (with
//! why), the next flush sends it once, it is never queued twice, and the
//! "fixed" follow-up is threaded under it.

mod common;

use common::smtp::{Smtp, header};
use csdci::service::outbox;
use csdci::store::Store;
use csdci::store::regressions::NewRegression;

#[test]
fn a_report_survives_a_relay_that_is_down_and_is_sent_once() {
    let tmp = tempfile::tempdir().unwrap();
    let mut smtp = Smtp::start();
    smtp.stop();
    let job_file = tmp.path().join("j.yaml");
    std::fs::write(
        &job_file,
        format!(
            "name: j\ntree: https://git.example.org/linux.git\nbranch: master\n\
             schedule: \"0 2 * * *\"\n\
             notify:\n  to: [\"Maintainer <m@example.org>\"]\n  from: csdci@example.org\n  \
             smtp:\n    url: \"smtp://127.0.0.1:{}\"\n    starttls: false\n",
            smtp.port
        ),
    )
    .unwrap();
    let job = csdci::jobs::load_file(&job_file).expect("valid job");
    let store = Store::open(&tmp.path().join("data")).unwrap();
    let head = "a".repeat(40);
    let night = store
        .night_start("j", "master", &job.tree, Some(&head), None)
        .unwrap();
    store.night_finish(night, "tested", None).unwrap();
    let reg = store
        .regression_insert(&NewRegression {
            job: "j",
            branch: "master",
            cell: "default",
            title: "build error: kernel/smp.c: error: boom",
            kind: "build",
            good: None,
            bad: &head,
            night,
            runs: 0,
            fails: 1,
            detail: Some("kernel/smp.c:12:3: error: boom"),
        })
        .unwrap();

    // Down: queued, not sent, kept with why.
    assert!(
        outbox::queue_report(&store, &job, reg, None)
            .unwrap()
            .is_some()
    );
    let f = outbox::flush(&store).unwrap();
    assert_eq!((f.sent, f.failed), (0, 1));
    let unsent = store.mails_unsent().unwrap();
    assert_eq!(unsent.len(), 1);
    assert_eq!(unsent[0].attempts, 1);
    assert!(unsent[0].last_error.is_some());
    // Never queued twice.
    assert!(
        outbox::queue_report(&store, &job, reg, None)
            .unwrap()
            .is_none()
    );

    // Up again: sent once.
    smtp.resume();
    let f = outbox::flush(&store).unwrap();
    assert_eq!((f.sent, f.failed), (1, 0));
    assert_eq!(outbox::flush(&store).unwrap().sent, 0);
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1, "{mails:#?}");
    let subject = header(&mails[0], "Subject").unwrap();
    assert!(subject.starts_with("[csdci] build error"), "{subject}");
    assert!(mails[0].contains("error: boom"), "{}", mails[0]);
    let report_id = header(&mails[0], "Message-ID").unwrap();

    // Fixed: one follow-up, threaded under the report.
    store
        .regression_fixed(reg, night, &"b".repeat(40), Some("aaaa..bbbb"))
        .unwrap();
    assert!(
        outbox::queue_fixed(&store, &job, reg, None)
            .unwrap()
            .is_some()
    );
    assert!(
        outbox::queue_fixed(&store, &job, reg, None)
            .unwrap()
            .is_none()
    );
    assert_eq!(outbox::flush(&store).unwrap().sent, 1);
    let mails = smtp.messages();
    assert_eq!(mails.len(), 2);
    assert_eq!(header(&mails[1], "In-Reply-To"), Some(report_id));
    assert!(
        header(&mails[1], "Subject")
            .unwrap()
            .starts_with("Re: [csdci]")
    );
}
