from deeplocal.cli.main import main

main()
