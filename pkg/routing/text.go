package routing

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Field is a part of the request that a message of the core tells its
// caller to change: a field of the Intent, or going ahead despite the
// preflight check. Messages name a field by placeholder ("{Canary}") rather
// than in words, so that each caller names it its own way: the command line
// by its flag, the core by a plain word.
type Field string

const (
	FieldStable           Field = "Stable"
	FieldCanary           Field = "Canary"
	FieldCanaryDeployment Field = "CanaryDeployment"
	FieldVersionLabel     Field = "VersionLabel"
	FieldRoutes           Field = "Routes"
	// FieldHeaderMatches and FieldCookieMatches are the header rules and
	// the cookie rules of Matches.
	FieldHeaderMatches Field = "HeaderMatches"
	FieldCookieMatches Field = "CookieMatches"
	FieldMirror        Field = "Mirror"
	FieldGateway       Field = "Gateway"
	// FieldHosts are the hosts of the Gateway.
	FieldHosts Field = "Hosts"
	// FieldRoutingAPI is the routing API the canary runs on.
	FieldRoutingAPI Field = "RoutingAPI"
	// FieldOverride is going ahead despite the errors the preflight check
	// found (Check's findings).
	FieldOverride Field = "Override"
	// FieldTarget is what selects the target of the command that got the
	// message (its namespace, cluster, manifest files), for a command the
	// message suggests: "kubectl canary start %s{Target}" pasted acts on
	// the same Service. The core has no word for it: it knows the
	// namespace only as part of the Service's name. A caller that does
	// names it with a leading space ("start reviews -n shop").
	FieldTarget Field = "Target"
)

// fieldWords are the core's own words for the fields.
var fieldWords = map[Field]string{
	FieldStable:           "stable",
	FieldCanary:           "canary",
	FieldCanaryDeployment: "canary deployment",
	FieldVersionLabel:     "version label",
	FieldRoutes:           "route",
	FieldHeaderMatches:    "header",
	FieldCookieMatches:    "cookie",
	FieldMirror:           "mirror",
	FieldGateway:          "gateway",
	FieldHosts:            "host",
	FieldRoutingAPI:       "routing API",
	FieldOverride:         "an override",
	FieldTarget:           "",
}

// Word is how the core itself names the field.
func (f Field) Word() string { return fieldWords[f] }

// Text is a message of the core that names parts of the request by
// placeholder. It is formatted as fmt.Sprintf formats its format and
// arguments, once every placeholder of the format is replaced; arguments
// are never searched for placeholders.
type Text struct {
	format string
	args   []interface{}
}

// textf makes a Text; format names fields as {Stable}, {Routes}...
func textf(format string, args ...interface{}) Text {
	return Text{format: format, args: args}
}

var placeholder = regexp.MustCompile(`\{([A-Za-z]+)\}`)

// Render words the message, naming each field as name says. A %w of the
// format (see Errorf) is formatted as %v.
func (t Text) Render(name func(Field) string) string {
	format := strings.ReplaceAll(t.format, "%w", "%v")
	format = placeholder.ReplaceAllStringFunc(format, func(p string) string {
		f := Field(p[1 : len(p)-1])
		if _, known := fieldWords[f]; !known {
			return p
		}
		return name(f)
	})
	return fmt.Sprintf(format, t.args...)
}

// String words the message in the core's own words.
func (t Text) String() string { return t.Render(Field.Word) }

// Fields are the fields the message names, in the order it first names them.
func (t Text) Fields() []Field {
	var out []Field
	seen := map[Field]bool{}
	for _, m := range placeholder.FindAllStringSubmatch(t.format, -1) {
		f := Field(m[1])
		if _, known := fieldWords[f]; known && !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}

// IntentError is a plan refused with advice to change part of the intent:
// a version, Deployment or route it names that does not exist, or a choice
// the cluster leaves open that the intent must make. Error words it in the
// core's words; a caller that gets the intent from elsewhere (flags)
// renders Text in its own.
type IntentError struct {
	Text Text
}

func (e *IntentError) Error() string { return e.Text.String() }

// intentErrorf makes an IntentError; format names fields as {Stable}...
func intentErrorf(format string, args ...interface{}) error {
	return &IntentError{Text: textf(format, args...)}
}

// TextError is an error whose message names parts of the request by
// placeholder, most often {Target} in a command it suggests, without
// being a refusal of the intent (an IntentError). Error words it in the
// core's words; a caller renders Text in its own.
type TextError struct {
	Text Text
	// wrapped is the error of the format's %w, if any.
	wrapped error
}

func (e *TextError) Error() string { return e.Text.String() }
func (e *TextError) Unwrap() error { return e.wrapped }

// Errorf makes a TextError. The format names fields as {Target}... and
// may wrap an error with %w, as fmt.Errorf does.
func Errorf(format string, args ...interface{}) error {
	return &TextError{Text: textf(format, args...), wrapped: errors.Unwrap(fmt.Errorf(format, args...))}
}

// Textual is the Text of an error that is an IntentError or a TextError
// itself (not one it wraps).
func Textual(err error) (Text, bool) {
	switch e := err.(type) {
	case *IntentError:
		return e.Text, true
	case *TextError:
		return e.Text, true
	}
	return Text{}, false
}
