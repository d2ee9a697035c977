package admin

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// MaxImportUsers bounds one import.
const MaxImportUsers = 100_000

// ParseUsers reads users for a bulk import: JSON (an array of
// {"email", "suspended" or "status"}, or {"users": [...]}) or CSV (one user
// a line: email[,status], status active or suspended; an optional header
// line naming the columns). It reports every bad row, with its line or
// index.
func ParseUsers(data []byte) ([]UserInput, error) {
	if hasNUL(data) || !utf8.Valid(data) {
		return nil, invalid("The user list must be UTF-8 text without NUL characters.")
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, errors.New("the file is empty")
	}
	if trimmed[0] == '[' || trimmed[0] == '{' {
		return parseUsersJSON(trimmed)
	}
	return parseUsersCSV(trimmed)
}

type jsonUser struct {
	Email     string `json:"email"`
	Suspended *bool  `json:"suspended"`
	Status    string `json:"status"`
}

func parseUsersJSON(data []byte) ([]UserInput, error) {
	var list []jsonUser
	if data[0] == '{' {
		var wrapper struct {
			Users []jsonUser `json:"users"`
		}
		if err := json.Unmarshal(data, &wrapper); err != nil {
			return nil, fmt.Errorf("not valid JSON: %w", err)
		}
		list = wrapper.Users
	} else if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	var (
		out  []UserInput
		errs []error
	)
	for i, u := range list {
		suspended, err := status(u.Status)
		if u.Suspended != nil {
			if u.Status != "" && *u.Suspended != suspended {
				err = errors.New("suspended and status disagree")
			}
			suspended = *u.Suspended
		}
		if err == nil && strings.TrimSpace(u.Email) == "" {
			err = errors.New("no email")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("user %d: %w", i+1, err))
			continue
		}
		out = append(out, UserInput{Email: strings.TrimSpace(u.Email), Suspended: suspended})
	}
	return checkCount(out, errs)
}

func status(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "active":
		return false, nil
	case "suspended":
		return true, nil
	}
	return false, fmt.Errorf("status %q must be active or suspended", s)
}

func parseUsersCSV(data []byte) ([]UserInput, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	r.Comment = '#'
	var (
		out  []UserInput
		errs []error
	)
	for first := true; ; first = false {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("not valid CSV: %w", err)
		}
		line, _ := r.FieldPos(0)
		if first && strings.EqualFold(strings.TrimSpace(rec[0]), "email") {
			continue // header
		}
		if len(rec) > 2 {
			errs = append(errs, fmt.Errorf("line %d: %d columns, want email[,status]", line, len(rec)))
			continue
		}
		suspended := false
		if len(rec) == 2 {
			if suspended, err = status(rec[1]); err != nil {
				errs = append(errs, fmt.Errorf("line %d: %w", line, err))
				continue
			}
		}
		if strings.TrimSpace(rec[0]) == "" {
			errs = append(errs, fmt.Errorf("line %d: no email", line))
			continue
		}
		out = append(out, UserInput{Email: strings.TrimSpace(rec[0]), Suspended: suspended})
	}
	return checkCount(out, errs)
}

func checkCount(out []UserInput, errs []error) ([]UserInput, error) {
	if len(out)+len(errs) > MaxImportUsers {
		return nil, fmt.Errorf("more than %d users: split the file", MaxImportUsers)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(out) == 0 {
		return nil, errors.New("the file has no users")
	}
	return out, nil
}
