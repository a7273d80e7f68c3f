import time
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from crm.services.imports import COLUMNS, ImportReport, receipts_import


class Command(BaseCommand):
    help = (
        "Import historical sales from a UTF-8 CSV file with the header "
        f"{','.join(COLUMNS)}. A purchased_at without a UTC offset is read in the "
        "store's time zone. Receipts already imported (same store and receipt "
        "number) are skipped; stock and loyalty points are left alone."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="The CSV file.")
        parser.add_argument(
            "--create-missing",
            action="store_true",
            help="Create unknown stores, products (uncategorised, priced at the "
            "first sale) and customers instead of refusing their rows.",
        )
        parser.add_argument(
            "--skip-bad-rows",
            action="store_true",
            help="Import the other receipts and report the ones with bad rows, "
            "instead of importing nothing.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Check the file and count what would be imported; write nothing.",
        )

    def handle(
        self,
        *args,
        file: Path,
        create_missing: bool,
        skip_bad_rows: bool,
        dry_run: bool,
        **options,
    ):
        started = time.monotonic()
        try:
            # utf-8-sig drops the byte order mark spreadsheets put in front.
            with file.open(newline="", encoding="utf-8-sig") as source:
                report = receipts_import(
                    source=source,
                    create_missing=create_missing,
                    skip_bad_rows=skip_bad_rows,
                    dry_run=dry_run,
                )
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}.") from exc
        except UnicodeDecodeError as exc:
            raise CommandError(
                f"{file} is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV."
            ) from exc
        except ValidationError as exc:
            raise self._refusal(exc, file=file) from exc
        elapsed = time.monotonic() - started
        for bad in report.bad_rows:
            self.stderr.write(str(bad))
        for store_code, number in report.receipts_skipped:
            self.stderr.write(
                f"skipped receipt '{number}' of store '{store_code}': it has bad rows"
            )
        self._summary(report, elapsed=elapsed)

    def _refusal(self, exc: ValidationError, *, file: Path) -> CommandError:
        rows = exc.error_dict.get("rows") if hasattr(exc, "error_dict") else None
        if not rows:
            return CommandError(" ".join(exc.messages))
        for message in exc.messages:
            self.stderr.write(message)
        bad_lines = {error.params["line"] for error in rows}
        return CommandError(
            f"{_count(len(bad_lines), 'bad row')} in {file}; nothing was imported. "
            "Correct them, or pass --skip-bad-rows to import the other receipts (and "
            "--create-missing to create unknown stores, products and customers)."
        )

    def _summary(self, report: ImportReport, *, elapsed: float) -> None:
        rate = report.lines_read / elapsed if elapsed else 0
        imported, created = (
            ("Would import", "Would create")
            if report.dry_run
            else ("Imported", "Created")
        )
        self.stdout.write(
            f"{imported} "
            f"{_count(report.receipts_imported, 'receipt')} with "
            f"{_count(report.lines_imported, 'line')}.\n"
            f"Skipped {_count(report.receipts_already_imported, 'receipt')} already "
            f"imported and {_count(len(report.receipts_skipped), 'receipt')} with "
            f"{_count(report.bad_row_count, 'bad row')}.\n"
            f"{created} "
            f"{_count(report.customers_created, 'customer')}, "
            f"{_count(report.stores_created, 'store')} and "
            f"{_count(report.products_created, 'product')}.\n"
            f"Read {_count(report.lines_read, 'line')} in {elapsed:.2f} s "
            f"({rate:,.0f} lines/s)."
        )
        if not report.dry_run:
            self.stdout.write(self.style.SUCCESS("Import complete."))


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"
