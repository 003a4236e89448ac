"""`python -m sendgrid_source`: how `sendgrid-source up` starts its two services."""

from sendgrid_source.cli import main

if __name__ == "__main__":
    main()
