package store_test

import (
	"bufio"
	"bytes"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEveryStoreMethodRunsOnBothDrivers: every exported *Store method is
// called from a test that runs on both drivers — from inside the function a
// test hands forEachDriver (or storetest.ForEachDriver), directly or through
// the test files' helpers. The single box (SQLite) is the default install, so
// a method tested on PostgreSQL alone is a method the default install may not
// be able to run; this test is how a new method without a both-driver test
// fails the build rather than a fresh box.
//
// The test files are type-checked (against the export data `go list
// -export` reports), so a call counts only when its receiver really is a
// *store.Store, not anything with a method of the same name.
func TestEveryStoreMethodRunsOnBothDrivers(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-export", "-deps", "-test", "-f", "{{.ImportPath}}\t{{.Export}}", ".").Output()
	require.NoError(t, err, "go list -export")
	exports := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		path, file, _ := strings.Cut(sc.Text(), "\t")
		// The test's variant of a package (built with export_test.go, or
		// against that variant) is the one the test files import.
		path, variant, _ := strings.Cut(path, " [")
		if _, seen := exports[path]; !seen || variant != "" {
			exports[path] = file
		}
	}
	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) { return os.Open(exports[path]) })

	names, err := filepath.Glob("*_test.go")
	require.NoError(t, err)
	var files []*ast.File
	for _, name := range names {
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		require.NoError(t, err)
		if f.Name.Name == "store_test" { // export_test.go is package store: in the export data
			files = append(files, f)
		}
	}
	info := &types.Info{Uses: map[*ast.Ident]types.Object{}, Selections: map[*ast.SelectorExpr]*types.Selection{}}
	_, err = (&types.Config{Importer: imp}).Check("store_test", fset, files, info)
	require.NoError(t, err, "type-check the test files")

	storePkg, err := imp.Import("github.com/ytcaption/ytcaption/core/internal/store")
	require.NoError(t, err)
	storeType := storePkg.Scope().Lookup("Store").Type()
	methods := types.NewMethodSet(types.NewPointer(storeType))

	byName := map[string]*ast.FuncDecl{} // the test files' own functions
	for _, f := range files {
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil {
				byName[fd.Name.Name] = fd
			}
		}
	}

	called := map[string]bool{}
	walked := map[*ast.FuncDecl]bool{}
	var walk func(n ast.Node)
	walk = func(n ast.Node) {
		ast.Inspect(n, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SelectorExpr:
				if sel := info.Selections[n]; sel != nil && types.Identical(derefNamed(sel.Recv()), storeType) {
					called[sel.Obj().Name()] = true
				}
			case *ast.Ident:
				fn, ok := info.Uses[n].(*types.Func)
				if ok && fn.Pkg() != nil && fn.Pkg().Name() == "store_test" && fn.Parent() == fn.Pkg().Scope() {
					if fd := byName[fn.Name()]; fd != nil && !walked[fd] {
						walked[fd] = true
						walk(fd.Body)
					}
				}
			}
			return true
		})
	}
	roots := 0
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || !isForEachDriver(info, call.Fun) {
				return true
			}
			for _, a := range call.Args {
				if lit, ok := a.(*ast.FuncLit); ok {
					roots++
					walk(lit.Body)
				}
			}
			return true
		})
	}
	require.Greater(t, roots, 20, "the both-driver tests were found")

	var missing []string
	for m := range methods.Methods() {
		if name := m.Obj().Name(); m.Obj().Exported() && !called[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	require.Empty(t, missing, "exported *Store methods no both-driver (forEachDriver) test calls")
}

// isForEachDriver says whether fun is forEachDriver or storetest.ForEachDriver.
func isForEachDriver(info *types.Info, fun ast.Expr) bool {
	var id *ast.Ident
	switch f := fun.(type) {
	case *ast.Ident:
		id = f
	case *ast.SelectorExpr:
		id = f.Sel
	default:
		return false
	}
	fn, ok := info.Uses[id].(*types.Func)
	if !ok || fn.Pkg() == nil {
		return false
	}
	return (fn.Pkg().Name() == "store_test" && fn.Name() == "forEachDriver") ||
		(fn.Pkg().Path() == "github.com/ytcaption/ytcaption/core/internal/storetest" && fn.Name() == "ForEachDriver")
}

func derefNamed(t types.Type) types.Type {
	if p, ok := t.(*types.Pointer); ok {
		return p.Elem()
	}
	return t
}
