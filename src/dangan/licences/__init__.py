"""Electronic licences: types, identifiers, issuance, rendering, QR tokens and status."""
