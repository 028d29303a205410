terraform {
  required_version = ">= 1.11.0, < 2.0.0"

  required_providers {
    digitalocean = {
      source  = "digitalocean/digitalocean"
      version = "2.71.0" # exact; `terraform init` records its checksums in .terraform.lock.hcl (commit it)
    }
  }

  # Remote state in a DigitalOcean Spaces bucket (S3 API). Credentials come from the
  # environment only: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY = a Spaces access key.
  # Locking: use_lockfile writes "<key>.tflock" next to the state with a conditional
  # (If-None-Match) PUT. See ../../README.md "State and locking" for the one-time check that
  # the bucket enforces it, and for the fallback (CI concurrency group) if it does not.
  backend "s3" {
    bucket = "deckhand-tfstate" # override: terraform init -backend-config="bucket=<your bucket>"
    key    = "deckhand/staging/terraform.tfstate"
    endpoints = {
      s3 = "https://fra1.digitaloceanspaces.com"
    }
    region       = "us-east-1" # ignored by Spaces; the S3 client requires a value
    use_lockfile = true

    skip_credentials_validation = true
    skip_requesting_account_id  = true
    skip_metadata_api_check     = true
    skip_region_validation      = true
    skip_s3_checksum            = true
  }
}

# The API token comes from the environment: DIGITALOCEAN_TOKEN (never a variable, so it
# cannot end up in a tfvars file or in the state).
provider "digitalocean" {}
