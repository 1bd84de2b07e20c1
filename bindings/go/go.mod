module github.com/fcgi-pm/fcgi-pm/bindings/go

go 1.19
