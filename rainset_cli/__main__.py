from rainset_cli.main import cli

cli(prog_name="rainset")
