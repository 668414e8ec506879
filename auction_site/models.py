"""No models. The module is here so that Django sends this app `post_migrate`, which installs
beat's periodic tasks after every `migrate` (auction_site.apps): Django skips apps without
a models module when it sends that signal."""
