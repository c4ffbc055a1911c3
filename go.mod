module github.com/natterim/natter

go 1.26.8
