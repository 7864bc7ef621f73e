package flagsource

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/autopack/dynretry/config"
	"github.com/autopack/dynretry/internal/atomicfile"
)

// PercentPath is the path of the rollout percentage in models.yaml.
var PercentPath = []string{"lovable_patterns", "p1_dynamic_retry_delays", "rollout_percent"}

// DefaultPercent is the percentage the plugin uses when models.yaml has no
// rollout_percent (the config package's default).
const DefaultPercent = 10

// ModelsYAML is the rollout_percent key of a models.yaml file.
type ModelsYAML struct{ Path string }

func (m ModelsYAML) String() string {
	return m.Path + " (" + strings.Join(PercentPath, ".") + ")"
}

// Percent reads the key; DefaultPercent when it is missing. The file must
// be a configuration the plugin accepts (config.Load).
func (m ModelsYAML) Percent() (float64, error) {
	if _, err := config.Load(m.Path, nil); err != nil {
		return 0, err
	}
	data, err := os.ReadFile(m.Path)
	if err != nil {
		return 0, err
	}
	_, value, err := locate(data)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", m.Path, err)
	}
	if value == nil {
		return DefaultPercent, nil
	}
	p, err := strconv.ParseFloat(strings.TrimSpace(value.Value), 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %s = %q: want a number", m.Path, strings.Join(PercentPath, "."), value.Value)
	}
	return p, nil
}

// SetPercent writes the key, changing nothing else in the file. An existing
// value is replaced where it stands, so comments, blank lines, quoting
// elsewhere and key order all stay as they were. A missing key is added to
// the node tree (the section created when missing too), which is then
// encoded again: comments stay, blank lines do not. The result must read
// back as percent and pass config.Load before it replaces the file.
func (m ModelsYAML) SetPercent(percent float64) error {
	if err := checkPercent(percent); err != nil {
		return err
	}
	data, err := os.ReadFile(m.Path)
	if err != nil {
		return err
	}
	if _, err := config.Load(m.Path, nil); err != nil {
		return fmt.Errorf("not writing to an invalid configuration: %w", err)
	}
	doc, value, err := locate(data)
	if err != nil {
		return fmt.Errorf("%s: %w", m.Path, err)
	}
	text := strconv.FormatFloat(percent, 'f', -1, 64)
	var out []byte
	if value != nil {
		if out, err = splice(data, value, text); err != nil {
			return fmt.Errorf("%s: %w", m.Path, err)
		}
	} else {
		if out, err = insert(doc, text); err != nil {
			return fmt.Errorf("%s: %w", m.Path, err)
		}
	}
	if _, v, err := locate(out); err != nil || v == nil || v.Value != text {
		return fmt.Errorf("%s: internal error: the edited file does not read back as %s", m.Path, text)
	}
	return atomicfile.Write(m.Path, func(w io.Writer) error {
		_, err := w.Write(out)
		return err
	})
}

// locate parses data and returns the document and the rollout_percent
// value node, nil when the key (or its section) is missing.
func locate(data []byte) (*yaml.Node, *yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, err
	}
	if doc.Kind == 0 { // an empty file
		return &doc, nil, nil
	}
	n := doc.Content[0]
	for i, key := range PercentPath {
		if n.Kind != yaml.MappingNode {
			return nil, nil, fmt.Errorf("%s is not a mapping", strings.Join(PercentPath[:i], "."))
		}
		next := mapValue(n, key)
		if next == nil {
			return &doc, nil, nil
		}
		n = next
	}
	if n.Kind != yaml.ScalarNode {
		return nil, nil, fmt.Errorf("%s is not a number", strings.Join(PercentPath, "."))
	}
	return &doc, n, nil
}

// mapValue returns the value of key in the mapping node m, nil when absent.
func mapValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// splice replaces the scalar n's text in data (found at n.Line and
// n.Column) with text.
func splice(data []byte, n *yaml.Node, text string) ([]byte, error) {
	start := 0
	for range n.Line - 1 {
		i := bytes.IndexByte(data[start:], '\n')
		if i < 0 {
			return nil, errors.New("value position past the end of the file")
		}
		start += i + 1
	}
	for range n.Column - 1 { // the column counts characters
		_, size := utf8.DecodeRune(data[start:])
		start += size
	}
	end, err := scalarEnd(data, start, n.Style)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(data)+len(text))
	out = append(out, data[:start]...)
	out = append(out, text...)
	return append(out, data[end:]...), nil
}

// scalarEnd returns where the single-line scalar starting at start ends.
func scalarEnd(data []byte, start int, style yaml.Style) (int, error) {
	switch {
	case style&yaml.DoubleQuotedStyle != 0:
		for i := start + 1; i < len(data) && data[i] != '\n'; i++ {
			switch data[i] {
			case '\\':
				i++
			case '"':
				return i + 1, nil
			}
		}
	case style&yaml.SingleQuotedStyle != 0:
		for i := start + 1; i < len(data) && data[i] != '\n'; i++ {
			if data[i] == '\'' {
				if i+1 < len(data) && data[i+1] == '\'' {
					i++
					continue
				}
				return i + 1, nil
			}
		}
	case style&(yaml.LiteralStyle|yaml.FoldedStyle) == 0:
		i := start
		for i < len(data) && !strings.ContainsRune("\n#,}]", rune(data[i])) {
			i++
		}
		for i > start && (data[i-1] == ' ' || data[i-1] == '\t' || data[i-1] == '\r') {
			i--
		}
		return i, nil
	}
	return 0, errors.New("rollout_percent is not a one-line scalar: write it as a plain number")
}

// insert adds rollout_percent: text to the document, creating the missing
// mappings on the way, and encodes it again.
func insert(doc *yaml.Node, text string) ([]byte, error) {
	if doc.Kind == 0 {
		*doc = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode}}}
	}
	n := doc.Content[0]
	for i, key := range PercentPath {
		next := mapValue(n, key)
		if next == nil || (next.Kind == yaml.ScalarNode && next.Tag == "!!null") {
			var v *yaml.Node
			if i == len(PercentPath)-1 {
				v = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: text}
				if strings.ContainsAny(text, ".") {
					v.Tag = "!!float"
				}
			} else {
				v = &yaml.Node{Kind: yaml.MappingNode}
			}
			if next == nil {
				n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, v)
			} else {
				*next = *v
			}
			next = mapValue(n, key)
		}
		n = next
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
