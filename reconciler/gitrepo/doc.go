// Package gitrepo is Charter's one way into a git repository, built on
// go-git: open a repository (bare or a work tree), resolve a revision, read
// a commit's metadata, read the policy files of a commit's tree straight
// from the object store as an fs.FS, compare a set of files with a commit,
// answer ancestry questions (cached), and walk first-parent history.
//
// The directory source uses it to name its revision (HEAD, and whether the
// work tree differs from HEAD's tree) and to watch what moves HEAD; the git
// source and the diff, log and blame commands build on the same calls.
//
// Which files are policy is decided by schema.IsPolicyFile and
// schema.SkipDir, the rule every source and the loader share. Only regular
// files are read; a symbolic link is followed only when its target lies
// inside the policy root (SPEC section 1), and a file over the size limit is
// an error naming it, detected before its content is read.
//
// A Repo is safe for concurrent use: go-git's object storage is not, so
// every call that reads objects or references is serialized.
package gitrepo
