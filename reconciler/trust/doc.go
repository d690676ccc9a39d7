// Package trust decides whether a git commit may replace the served one:
// its signature, and the signatures of the commits below it, by a trusted
// key, and whether it descends from the served commit (rollback
// protection). It also keeps the last served commit in a state file, so that
// these checks hold across a restart.
//
// Trusted keys are armored OpenPGP public keys (--trusted-keys), checked
// with ProtonMail's go-crypto, the OpenPGP implementation go-git's own
// commit verification uses, and SSH keys listed in git's allowed_signers
// format (--trusted-ssh-signers), checked with github.com/hiddeco/sshsig in
// the namespace "git". The key files are read again at every check and
// parsed again when their content changed; a mistake in one is reported
// with its file and line.
//
// A commit's signature is good (signed by a trusted key, with the signer
// named), bad (signed, but the signature does not verify, or was made by a
// key that is not trusted, and Result.Reason says which) or none. Policy
// checks a new tip against the served commit: in Tip mode its signature, in
// All mode the signature of every commit reachable from it and not from the
// served commit (gitrepo.Range), merged-in commits included; and with
// NoRewind, it rejects a tip that does not descend from the served commit.
//
// The package knows nothing of the reconciler's loop: the reconciler's
// verify step calls Policy.Check and turns a *RejectError into a rejected
// revision.
package trust
