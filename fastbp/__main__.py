from fastbp.cli import main_entry

main_entry()
