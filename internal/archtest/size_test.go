package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// Limits of issue 11: a function a reader can hold, a type of one concern.
const (
	maxFuncLines = 80
	maxMethods   = 25
)

// isTable reports whether a function body is a table: one switch, then at
// most a final return (a dispatch by kind reads best as one list).
func isTable(body *ast.BlockStmt) bool {
	l := body.List
	if len(l) == 2 {
		if _, ok := l[1].(*ast.ReturnStmt); !ok {
			return false
		}
		l = l[:1]
	}
	if len(l) != 1 {
		return false
	}
	switch l[0].(type) {
	case *ast.SwitchStmt, *ast.TypeSwitchStmt:
		return true
	}
	return false
}

func TestSizes(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	methods := map[string]int{} // "dir.Type" -> methods
	files := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		files++
		rel, _ := filepath.Rel(root, path)
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			name := fd.Name.Name
			if fd.Recv != nil && len(fd.Recv.List) == 1 {
				typ := fd.Recv.List[0].Type
				if s, ok := typ.(*ast.StarExpr); ok {
					typ = s.X
				}
				if id, ok := typ.(*ast.Ident); ok {
					key := filepath.Dir(rel) + "." + id.Name
					methods[key]++
					name = id.Name + "." + name
				}
			}
			n := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1
			if n > maxFuncLines && !isTable(fd.Body) {
				t.Errorf("%s: %s is %d lines (at most %d outside tests and tables): split it into named steps", rel, name, n, maxFuncLines)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("parsed %d files: the walk went wrong", files)
	}
	for typ, n := range methods {
		if n > maxMethods {
			t.Errorf("%s has %d methods (at most %d): split it by concern", typ, n, maxMethods)
		}
	}
}
