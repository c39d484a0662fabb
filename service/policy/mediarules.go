package policy

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/mediagw/mediagw/service/inspect/rules"
)

// MediaRules returns the media rules of the accounts file as the engine
// asks for them: by account name, and under "" those of the uploads that
// use no named account (the --x-* credentials, called default, and a
// caller's own X user token), which default_media_rules changes. Only the
// accounts that change the defaults are in it.
func (f *AccountsFile) MediaRules() (map[string]rules.Profile, error) {
	out := map[string]rules.Profile{}
	if f.DefaultMediaRules != nil {
		p, err := rules.Default().With(f.DefaultMediaRules)
		if err != nil {
			return nil, fmt.Errorf("default_media_rules: %w", err)
		}
		out[""] = p
	}
	for name, a := range f.Accounts {
		if a.MediaRules == nil {
			continue
		}
		p, err := rules.Default().With(a.MediaRules)
		if err != nil {
			return nil, fmt.Errorf("account %q: media_rules: %w", name, err)
		}
		out[name] = p
	}
	return out, nil
}

// overrideFields maps the names of the rules an Override holds (its yaml
// names) to its fields.
var overrideFields = func() map[string]reflect.StructField {
	m := map[string]reflect.StructField{}
	t := reflect.TypeFor[rules.Override]()
	for i := range t.NumField() {
		f := t.Field(i)
		m[strings.Split(f.Tag.Get("yaml"), ",")[0]] = f
	}
	return m
}()

func ruleNames() string {
	names := make([]string, 0, len(overrideFields))
	for n := range overrideFields {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// decodeMediaRules reads a media_rules mapping (field is where it stands,
// for errors: media_rules or default_media_rules) rule by rule, so that an
// error names its line and field; an absent or empty mapping is nil. It
// refuses unknown categories and rules, a rule given twice, values of the
// wrong kind and negative numbers (a zero removes a rule).
func decodeMediaRules(n *yaml.Node, field string) (rules.Overrides, error) {
	if n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return nil, nil
	}
	defaults := rules.Default()
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: %s maps media categories (%s) to rules", n.Line, field, strings.Join(defaults.Categories(), ", "))
	}
	out := rules.Overrides{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		cat := strings.ToLower(k.Value)
		if _, ok := defaults[cat]; !ok {
			return nil, fmt.Errorf("line %d: %s: %q is not a media category (%s)", k.Line, field, k.Value, strings.Join(defaults.Categories(), ", "))
		}
		if _, dup := out[cat]; dup {
			return nil, fmt.Errorf("line %d: %s.%s is given twice", k.Line, field, cat)
		}
		o, err := decodeOverride(v, field+"."+cat)
		if err != nil {
			return nil, err
		}
		out[cat] = o
	}
	return out, nil
}

func decodeOverride(n *yaml.Node, field string) (rules.Override, error) {
	var o rules.Override
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return o, nil
	}
	if n.Kind != yaml.MappingNode {
		return o, fmt.Errorf("line %d: %s is a map of rules such as {max_duration: 20m, max_bytes: 8GiB}", n.Line, field)
	}
	ov := reflect.ValueOf(&o).Elem()
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		f, ok := overrideFields[k.Value]
		if !ok {
			return o, fmt.Errorf("line %d: %s: %q is not a media rule (%s)", k.Line, field, k.Value, ruleNames())
		}
		if seen[k.Value] {
			return o, fmt.Errorf("line %d: %s.%s is given twice", k.Line, field, k.Value)
		}
		seen[k.Value] = true
		p := reflect.New(f.Type.Elem())
		err := v.Decode(p.Interface())
		if _, text := p.Interface().(encoding.TextUnmarshaler); err == nil && !text && isInt(p.Elem()) && v.ShortTag() != "!!int" {
			// yaml truncates 1.5 to 1 silently.
			err = &yaml.TypeError{}
		}
		if err != nil {
			var te *yaml.TypeError
			if errors.As(err, &te) {
				err = fmt.Errorf("%s is not %s", valueOf(v), kindName(f.Type.Elem()))
			}
			return o, fmt.Errorf("line %d: %s.%s: %w", v.Line, field, k.Value, err)
		}
		if negative(p.Elem()) {
			return o, fmt.Errorf("line %d: %s.%s: %s is negative; a limit is 0 (no rule) or more", v.Line, field, k.Value, v.Value)
		}
		ov.FieldByIndex(f.Index).Set(p)
	}
	return o, nil
}

// valueOf is a value as an error shows it.
func valueOf(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a map"
	case yaml.SequenceNode:
		return "a list"
	}
	return strconv.Quote(n.Value)
}

// kindName says what a rule's value must be, for errors.
func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int64:
		return "a whole number"
	case reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice:
		return "a list such as [mp4, mov]"
	}
	return "a " + t.Name()
}

func isInt(v reflect.Value) bool { return v.Kind() == reflect.Int || v.Kind() == reflect.Int64 }

func negative(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Int, reflect.Int64:
		return v.Int() < 0
	case reflect.Float64:
		return v.Float() < 0
	}
	return false
}
