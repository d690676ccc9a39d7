package git

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"
)

// Remote is a parsed --source URL: where the repository is, how to name it
// in status and logs, and the credentials its userinfo carried.
type Remote struct {
	// Scheme is one of file, git, http, https, ssh (scp-like URLs are ssh).
	Scheme string
	// Host is the host, with its port when one is given; empty for file.
	Host string
	// Path is the repository's path on the host.
	Path string
	// User is the user name of an ssh URL ("git" in git@host:org/repo);
	// empty for other schemes.
	User string
	// String is the URL as shown in status, logs, metrics and errors: with
	// no password and, but for an ssh user, no userinfo at all.
	display string
	// urlUser and urlPassword are the userinfo of an http(s) URL, used as
	// basic auth when no token file is given. Never shown.
	urlUser, urlPassword string
	// Stripped reports that the URL carried userinfo that could be a
	// credential, which String leaves out.
	Stripped bool
	// endpoint is the URL handed to go-git: no userinfo but an ssh user.
	endpoint string
}

// scpLike matches git's scp-like syntax "user@host:path" (the user is
// required: "host:path" stays a local directory name).
// A user with a colon is matched too, so that "user:password@host:path" is
// refused as a URL rather than taken for a directory.
var scpLike = regexp.MustCompile(`^([^@/\s]+)@([^@/:\s]+):(.+)$`)

// IsURL reports whether s names a remote repository (a URL with a scheme,
// or scp-like "user@host:path") rather than a local directory.
func IsURL(s string) bool {
	return strings.Contains(s, "://") || scpLike.MatchString(s)
}

// ParseURL parses a --source URL: file:///abs/path, git://host[:port]/path,
// http(s)://host[:port]/path, ssh://[user@]host[:port]/path, or scp-like
// user@host:path. Errors never show the URL's password.
func ParseURL(raw string) (*Remote, error) {
	if strings.ContainsAny(raw, "\x00\n\r\t ") {
		return nil, errors.New("the URL holds whitespace or a control character")
	}
	if m := scpLike.FindStringSubmatch(raw); m != nil && !strings.Contains(raw, "://") {
		user, host, p := m[1], m[2], m[3]
		if strings.Contains(user, ":") {
			return nil, errors.New("an scp-like URL cannot carry a password")
		}
		r := &Remote{Scheme: "ssh", Host: host, Path: p, User: user}
		r.display = user + "@" + host + ":" + p
		r.endpoint = r.display
		return r, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("not a URL: %s", redactParseError(err, raw))
	}
	r := &Remote{Scheme: strings.ToLower(u.Scheme), Host: u.Host, Path: u.Path}
	switch r.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("file URL with host %q: want file:///absolute/path", u.Host)
		}
		r.Host = ""
		if !path.IsAbs(u.Path) {
			return nil, errors.New("file URL without an absolute path: want file:///absolute/path")
		}
	case "git", "http", "https", "ssh":
		if u.Hostname() == "" {
			return nil, fmt.Errorf("%s URL without a host", r.Scheme)
		}
		if u.Path == "" || u.Path == "/" {
			return nil, fmt.Errorf("%s URL without a repository path", r.Scheme)
		}
	case "":
		return nil, errors.New("no scheme: want file://, git://, https://, ssh:// or user@host:path")
	default:
		return nil, fmt.Errorf("scheme %q is not supported: want file://, git://, https://, ssh:// or user@host:path", u.Scheme)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("a repository URL has no query or fragment")
	}
	clean := &url.URL{Scheme: r.Scheme, Host: r.Host, Path: r.Path}
	if u.User != nil {
		password, hasPassword := u.User.Password()
		switch {
		case r.Scheme == "ssh" && !hasPassword:
			r.User = u.User.Username()
			clean.User = url.User(r.User)
		case r.Scheme == "ssh":
			r.User = u.User.Username()
			clean.User = url.User(r.User)
			r.Stripped = true
		case r.Scheme == "http" || r.Scheme == "https":
			r.urlUser, r.urlPassword = u.User.Username(), password
			r.Stripped = true
		default:
			r.Stripped = true
		}
	}
	r.display = clean.String()
	r.endpoint = r.display
	if r.Scheme == "file" {
		r.display = "file://" + r.Path
		r.endpoint = r.display
	}
	return r, nil
}

// redactParseError returns err's message with raw, whose userinfo may hold
// a credential, left out.
func redactParseError(err error, raw string) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return strings.ReplaceAll(err.Error(), raw, "the URL")
}

// String returns the URL without credentials.
func (r *Remote) String() string { return r.display }

// CacheKey names the remote's clone in the cache directory: 16 hex digits
// of the SHA-256 of the URL without any userinfo, so that the same
// repository reached with other credentials shares its clone and another
// repository never does.
func (r *Remote) CacheKey() string {
	u := r.display
	switch {
	case r.Scheme == "ssh" && r.User != "" && strings.HasPrefix(u, r.User+"@"):
		u = "ssh://" + strings.TrimPrefix(u, r.User+"@") // scp-like
	case r.Scheme == "ssh" && r.User != "":
		u = strings.Replace(u, "://"+url.User(r.User).String()+"@", "://", 1)
	}
	sum := sha256.Sum256([]byte(u))
	return hex.EncodeToString(sum[:8])
}
