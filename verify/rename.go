package verify

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// Rules map framework tensor names to logical names (the --rename file). One rule per line:
//
//	[@axis=c[,axis=c…]] REGEX => REPLACEMENT
//
// Blank lines and lines starting with # are ignored. The optional @ condition restricts a rule to
// pieces at those mesh coordinates (e.g. @pp=1 for the second pipeline stage). The first rule
// whose condition holds and whose regex matches rewrites every match in the name; a name no rule
// matches is kept. REPLACEMENT uses Go's regexp syntax ($1, ${1}, ${name}, $$ for a dollar)
// plus integer offsets ${1+4} and ${1-4}, which turn stage-local layer indices into global ones:
//
//	@pp=1 ^(grad|act|param)/layers\.(\d+)\. => ${1}/layers.${2+4}.
type Rules struct {
	rules []rule
}

type rule struct {
	line int
	cond map[string]int
	re   *regexp.Regexp
	repl string
}

// ParseRules reads rules; name (the file name) is used in errors.
func ParseRules(r io.Reader, name string) (*Rules, error) {
	rs := &Rules{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		ru, err := parseRule(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", name, n, err)
		}
		ru.line = n
		rs.rules = append(rs.rules, ru)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	return rs, nil
}

func parseRule(line string) (rule, error) {
	var ru rule
	if strings.HasPrefix(line, "@") {
		condStr, rest, _ := strings.Cut(line[1:], " ")
		ru.cond = map[string]int{}
		for _, item := range strings.Split(condStr, ",") {
			axis, val, ok := strings.Cut(item, "=")
			c, err := strconv.Atoi(val)
			if !ok || err != nil || c < 0 || axis == "" {
				return ru, fmt.Errorf("condition %q is not axis=coordinate", item)
			}
			ru.cond[axis] = c
		}
		line = strings.TrimSpace(rest)
	}
	pat, repl, ok := strings.Cut(line, " => ")
	if !ok {
		return ru, fmt.Errorf("rule %q has no ' => ' between regex and replacement", line)
	}
	re, err := regexp.Compile(strings.TrimSpace(pat))
	if err != nil {
		return ru, fmt.Errorf("bad regex: %v", err)
	}
	ru.re, ru.repl = re, strings.TrimSpace(repl)
	if _, err := expand(ru.repl, re, "", nil, true); err != nil {
		return ru, err
	}
	return ru, nil
}

// Apply renames name for a piece whose coordinate on an axis is given by coord.
func (rs *Rules) Apply(name string, coord func(axis string) (int, bool)) (string, error) {
	if rs == nil {
		return name, nil
	}
	for _, ru := range rs.rules {
		if !ru.holds(coord) {
			continue
		}
		ms := ru.re.FindAllStringSubmatchIndex(name, -1)
		if ms == nil {
			continue
		}
		var b strings.Builder
		last := 0
		for _, m := range ms {
			b.WriteString(name[last:m[0]])
			s, err := expand(ru.repl, ru.re, name, m, false)
			if err != nil {
				return "", fmt.Errorf("rename rule on line %d, name %q: %v", ru.line, name, err)
			}
			b.WriteString(s)
			last = m[1]
		}
		b.WriteString(name[last:])
		return b.String(), nil
	}
	return name, nil
}

func (ru rule) holds(coord func(string) (int, bool)) bool {
	for axis, want := range ru.cond {
		if c, ok := coord(axis); !ok || c != want {
			return false
		}
	}
	return true
}

var identRE = regexp.MustCompile(`^[A-Za-z0-9_]+`)

// expand writes tmpl with submatches m of src substituted; checkOnly validates the template.
func expand(tmpl string, re *regexp.Regexp, src string, m []int, checkOnly bool) (string, error) {
	var b strings.Builder
	for i := 0; i < len(tmpl); i++ {
		c := tmpl[i]
		if c != '$' {
			b.WriteByte(c)
			continue
		}
		rest := tmpl[i+1:]
		var ref, offset string
		switch {
		case strings.HasPrefix(rest, "$"):
			b.WriteByte('$')
			i++
			continue
		case strings.HasPrefix(rest, "{"):
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				return "", fmt.Errorf("replacement %q: unclosed ${", tmpl)
			}
			body := rest[1:end]
			ref = identRE.FindString(body)
			offset = body[len(ref):]
			i += end + 1
		default:
			ref = identRE.FindString(rest)
			i += len(ref)
		}
		if ref == "" {
			return "", fmt.Errorf("replacement %q: $ not followed by a group", tmpl)
		}
		g := groupIndex(re, ref)
		if g < 0 {
			return "", fmt.Errorf("replacement %q: the regex has no group %q", tmpl, ref)
		}
		var k int
		if offset != "" {
			v, err := strconv.Atoi(offset)
			if err != nil || (offset[0] != '+' && offset[0] != '-') {
				return "", fmt.Errorf("replacement %q: offset %q is not +N or -N", tmpl, offset)
			}
			k = v
		}
		if checkOnly {
			continue
		}
		val := ""
		if 2*g+1 < len(m) && m[2*g] >= 0 {
			val = src[m[2*g]:m[2*g+1]]
		}
		if offset != "" {
			n, err := strconv.Atoi(val)
			if err != nil {
				return "", fmt.Errorf("group %s is %q, not an integer, so ${%s%s} cannot be computed", ref, val, ref, offset)
			}
			val = strconv.Itoa(n + k)
		}
		b.WriteString(val)
	}
	return b.String(), nil
}

func groupIndex(re *regexp.Regexp, ref string) int {
	if n, err := strconv.Atoi(ref); err == nil {
		if n <= re.NumSubexp() {
			return n
		}
		return -1
	}
	return re.SubexpIndex(ref)
}
