// Package gitrepo is Charter's one way into a git repository, built on
// go-git: open a repository (bare or a work tree) or make a bare one,
// resolve a revision, read a commit's metadata, present a commit's tree as
// an fs.FS read straight from the object store (TreeFS) and read its policy
// files through it, compare a set of files with a commit, answer ancestry
// questions (cached), walk first-parent history, and fetch a branch from a
// remote (Dial, Session, Repo.Fetch: one ref advertisement, then only the
// objects the repository lacks).
//
// The directory source uses it to name its revision (HEAD, and whether the
// work tree differs from HEAD's tree) and to watch what moves HEAD; the git
// source clones and fetches with it; the diff, log and blame commands build
// on the same calls.
//
// Which files are policy, and how they are read, is decided by schema
// (IsPolicyFile, SkipDir, ReadPolicyFile), through source.ReadFS: the rule
// every source and the loader share. Only regular files are read; a
// symbolic link is followed only when its target lies inside the policy
// root (SPEC section 1), and a file over the size limit is an error naming
// it, detected before its content is read. Nothing outside the policy root
// is read.
//
// A Repo is safe for concurrent use: go-git's object storage is not, so
// every call that reads or writes objects or references is serialized
// (history questions give up waiting when their context ends).
package gitrepo
