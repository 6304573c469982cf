package checks

import (
	"regexp"
	"testing"
)

// TestSecretWordsAsBuildKit: the word-by-word match of ARG and ENV names
// says what BuildKit's regexps say.
func TestSecretWordsAsBuildKit(t *testing.T) {
	secret := regexp.MustCompile(`(?i)(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)`)
	allow := regexp.MustCompile(`(?i)(?:_|^)(?:public|file|version)(?:_|$)`)
	for _, name := range []string{
		"API_TOKEN", "DB_PASSWORD", "PUBLIC_KEY", "TOKENIZER", "token", "Token_", "_KEY", "A__KEY", "KEY_FILE",
		"MY_SECRET_VERSION", "apikey", "APIKEYS", "AUTH", "OAUTH", "CREDENTIALS_PATH", "PWORD", "passwd_x",
		"SECRETS", "KEYCHAIN", "X_KEY_Y", "", "_", "__", "NO_SECRET_HERE", "K\u212aY", "PUBLICKEY", "FILE_AUTH",
	} {
		want := secret.MatchString(name) && !allow.MatchString(name)
		if got := hasWord(name, secretWords) && !hasWord(name, secretAllowWords); got != want {
			t.Errorf("%q: looks like a secret = %v, BuildKit's regexps say %v", name, got, want)
		}
	}
}
