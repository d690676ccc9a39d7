package git

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	gitclient "github.com/go-git/go-git/v5/plumbing/transport/git"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/plumbing/transport/server"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"golang.org/x/crypto/ssh"
)

// DefaultUsername is the user of HTTPS basic auth with a token.
const DefaultUsername = "git"

// maxCredentialBytes bounds a credential file.
const maxCredentialBytes = 64 << 10

// Credentials name the files that hold what reaches the remote. They are
// read again on every fetch, so that a rotated secret (a Kubernetes Secret
// mounted as files) is used without a restart. Their content never appears
// in a log line, a status, a metric or an error.
type Credentials struct {
	// SSHKeyFile holds an unencrypted private key (OpenSSH or PEM) for
	// ssh:// and scp-like URLs.
	SSHKeyFile string
	// KnownHostsFile holds the remote's host keys, in OpenSSH's
	// known_hosts format. Empty: $SSH_KNOWN_HOSTS, else ~/.ssh/known_hosts.
	// A host key it does not list is refused; nothing accepts any key.
	KnownHostsFile string
	// TokenFile holds a token, sent over https:// as the password of basic
	// auth.
	TokenFile string
	// Username is the user of that basic auth. Empty: DefaultUsername.
	Username string
}

// check refuses credentials that do not fit the remote's scheme.
func (c Credentials) check(r *Remote) error {
	if c.SSHKeyFile != "" && r.Scheme != "ssh" {
		return fmt.Errorf("--git-ssh-key-file is for ssh:// and user@host:path URLs, not %s://", r.Scheme)
	}
	if c.KnownHostsFile != "" && r.Scheme != "ssh" {
		return fmt.Errorf("--git-known-hosts-file is for ssh:// and user@host:path URLs, not %s://", r.Scheme)
	}
	if c.TokenFile != "" && r.Scheme != "https" {
		if r.Scheme == "http" {
			return errors.New("--git-token-file with an http:// URL would send the token in clear: use https://")
		}
		return fmt.Errorf("--git-token-file is for https:// URLs, not %s://", r.Scheme)
	}
	if r.Scheme == "ssh" && c.SSHKeyFile == "" {
		return errors.New("an ssh URL needs --git-ssh-key-file (a deploy key) and the host's key in --git-known-hosts-file")
	}
	return nil
}

// readCredential reads a credential file, bounded, with surrounding white
// space removed. Its errors name the flag and the file, never the content.
func readCredential(flag, name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCredentialBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: read %s: %w", flag, name, err)
	}
	if len(data) > maxCredentialBytes {
		return nil, fmt.Errorf("%s: %s holds more than %d bytes", flag, name, maxCredentialBytes)
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, fmt.Errorf("%s: %s is empty", flag, name)
	}
	return data, nil
}

// connection is what one fetch reaches the remote with.
type connection struct {
	transport transport.Transport
	endpoint  *transport.Endpoint
	auth      transport.AuthMethod // nil: none
}

// connect builds the transport and, from the credential files read now,
// the authentication for one fetch. timeout bounds an ssh connection's TCP
// dial.
func (s *Source) connect(timeout time.Duration) (*connection, error) {
	ep, err := transport.NewEndpoint(s.remote.endpoint)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.remote, err)
	}
	c := &connection{endpoint: ep}
	switch s.remote.Scheme {
	case "file":
		c.transport = server.NewClient(fileLoader{})
	case "git":
		c.transport = gitclient.DefaultClient
	case "http", "https":
		c.transport = githttp.NewClient(s.http)
		user, password := s.remote.urlUser, s.remote.urlPassword
		if s.opts.Credentials.TokenFile != "" {
			token, err := readCredential("--git-token-file", s.opts.Credentials.TokenFile)
			if err != nil {
				return nil, err
			}
			user, password = s.opts.Credentials.Username, string(token)
			if user == "" {
				user = DefaultUsername
			}
		}
		if user != "" || password != "" {
			c.auth = &githttp.BasicAuth{Username: user, Password: password}
		}
	case "ssh":
		c.transport = gitssh.DefaultClient
		if c.auth, err = s.sshAuth(ep, timeout); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("scheme %q is not supported", s.remote.Scheme)
	}
	return c, nil
}

// sshAuth reads the key and the known hosts for one ssh connection.
func (s *Source) sshAuth(ep *transport.Endpoint, timeout time.Duration) (*sshAuth, error) {
	creds := s.opts.Credentials
	pem, err := readCredential("--git-ssh-key-file", creds.SSHKeyFile)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.ParsePrivateKey(pem)
	var missing *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &missing):
		return nil, fmt.Errorf("--git-ssh-key-file: %s is encrypted with a passphrase: give an unencrypted deploy key", creds.SSHKeyFile)
	case err != nil:
		return nil, fmt.Errorf("--git-ssh-key-file: %s is not a private key (OpenSSH or PEM)", creds.SSHKeyFile)
	}
	hostsFile := creds.KnownHostsFile
	if hostsFile == "" {
		hostsFile = os.Getenv("SSH_KNOWN_HOSTS")
	}
	if hostsFile == "" {
		if home, err := os.UserHomeDir(); err == nil {
			hostsFile = filepath.Join(home, ".ssh", "known_hosts")
		}
	}
	if hostsFile == "" {
		return nil, errors.New("no known_hosts file: give the remote's host keys with --git-known-hosts-file")
	}
	if _, err := readCredential("--git-known-hosts-file", hostsFile); err != nil {
		return nil, fmt.Errorf("%w (the remote's host keys are required: ssh-keyscan HOST, checked, into that file)", err)
	}
	db, err := gitssh.NewKnownHostsDb(hostsFile)
	if err != nil {
		return nil, fmt.Errorf("--git-known-hosts-file: %s: %w", hostsFile, err)
	}
	port := ep.Port
	if port <= 0 {
		port = gitssh.DefaultPort
	}
	hostPort := net.JoinHostPort(ep.Host, strconv.Itoa(port))
	user := ep.User
	if user == "" {
		user = DefaultUsername
	}
	return &sshAuth{
		user:     user,
		signer:   signer,
		hostKeys: db.HostKeyCallback(),
		algos:    db.HostKeyAlgorithms(hostPort),
		timeout:  timeout,
	}, nil
}

// sshAuth authenticates with one private key and checks the host's key
// against known_hosts. It is go-git's ssh.AuthMethod.
type sshAuth struct {
	user     string
	signer   ssh.Signer
	hostKeys ssh.HostKeyCallback
	algos    []string
	timeout  time.Duration
}

var _ gitssh.AuthMethod = (*sshAuth)(nil)

func (a *sshAuth) Name() string { return "ssh-public-key" }

// String names the user and the key's fingerprint, never the key.
func (a *sshAuth) String() string {
	return "ssh user " + a.user + " with key " + ssh.FingerprintSHA256(a.signer.PublicKey())
}

// ClientConfig is the configuration of one ssh connection.
func (a *sshAuth) ClientConfig() (*ssh.ClientConfig, error) {
	return &ssh.ClientConfig{
		User:              a.user,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(a.signer)},
		HostKeyCallback:   a.hostKeys,
		HostKeyAlgorithms: a.algos,
		Timeout:           a.timeout,
	}, nil
}

// newHTTPClient returns the client of https remotes: the default
// transport's settings (proxy from the environment), and no redirect from
// https to http, which would send credentials in clear.
func newHTTPClient() *http.Client {
	return &http.Client{
		Transport: http.DefaultTransport.(*http.Transport).Clone(),
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
				return errors.New("refused a redirect from https to " + req.URL.Scheme)
			}
			return nil
		},
	}
}

// fileLoader opens the repositories of file:// URLs for go-git's
// in-process upload-pack server, so that file:// needs no git binary: a
// bare repository, or the .git directory of a work tree.
type fileLoader struct{}

func (fileLoader) Load(ep *transport.Endpoint) (storer.Storer, error) {
	dir := filepath.FromSlash(ep.Path)
	if info, err := os.Stat(filepath.Join(dir, ".git")); err == nil && info.IsDir() {
		dir = filepath.Join(dir, ".git")
	}
	if info, err := os.Stat(filepath.Join(dir, "objects")); err != nil || !info.IsDir() {
		return nil, transport.ErrRepositoryNotFound
	}
	return filesystem.NewStorage(osfs.New(dir), cache.NewObjectLRUDefault()), nil
}
