package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// defaultURL is where `make run` serves the REST API.
const defaultURL = "http://127.0.0.1:8000"

// config is what `ytcaption login` keeps in the user's config directory.
type config struct {
	URL    string `json:"url"`
	APIKey string `json:"api_key"`
}

// configPath is $XDG_CONFIG_HOME/ytcaption/config.json, or under ~/.config.
func configPath(getenv func(string) string) (string, error) {
	dir := getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home := getenv("HOME")
		if home == "" {
			return "", errors.New("neither XDG_CONFIG_HOME nor HOME is set: cannot find the config directory")
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "ytcaption", "config.json"), nil
}

// loadConfig reads the saved config; YTCAPTION_URL and YTCAPTION_API_KEY
// override it, and the server defaults to the local dev stack.
func loadConfig(getenv func(string) string) (config, error) {
	var c config
	if path, err := configPath(getenv); err == nil {
		b, err := os.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return c, err
		default:
			if err := json.Unmarshal(b, &c); err != nil {
				return c, fmt.Errorf("%s is not valid JSON: %w", path, err)
			}
		}
	}
	if v := getenv("YTCAPTION_URL"); v != "" {
		c.URL = v
	}
	if v := getenv("YTCAPTION_API_KEY"); v != "" {
		c.APIKey = v
	}
	if c.URL == "" {
		c.URL = defaultURL
	}
	return c, nil
}

// save writes the config readable by its owner only: it holds an API key.
func (c config) save(getenv func(string) string) (string, error) {
	path, err := configPath(getenv)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return "", err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp, 0o600); err != nil { // WriteFile keeps an existing file's mode
		return "", err
	}
	return path, os.Rename(tmp, path)
}
