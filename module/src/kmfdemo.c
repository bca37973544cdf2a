// SPDX-License-Identifier: GPL-2.0-only
/*
 * kmfdemo - kmodfarm's example out-of-tree module.
 *
 * It exists to exercise a real build matrix: ./configure (run by DKMS as the
 * PRE_BUILD step) compiles a probe against the target kernel's headers to
 * learn whether class_create() still takes an owner argument (it lost it in
 * 6.4), and records one symbol's address when the kernel's real System.map
 * was available. The result is readable from /dev/kmfdemo and from modinfo,
 * so tests can check what a given build was configured for.
 */

#include <linux/cdev.h>
#include <linux/device.h>
#include <linux/fs.h>
#include <linux/init.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <generated/utsrelease.h>

#include "config.h" /* written by ./configure for one kernel */

#define KMFDEMO_NAME "kmfdemo"
#define KMFDEMO_VERSION "1.0.0"

#if KMFDEMO_CLASS_CREATE_TAKES_OWNER
#define KMFDEMO_API "old-class-create"
#define KMFDEMO_API_SHORT "old"
#else
#define KMFDEMO_API "new-class-create"
#define KMFDEMO_API_SHORT "new"
#endif

/* What /dev/kmfdemo reports; also stored in modinfo for offline checks. */
#ifdef KMFDEMO_SYMBOL_ADDR
#define KMFDEMO_SYMBOL_TEXT "0x" KMFDEMO_SYMBOL_ADDR_HEX
#else
#define KMFDEMO_SYMBOL_TEXT "none"
#endif

static dev_t kmfdemo_devt;
static struct cdev kmfdemo_cdev;
static struct class *kmfdemo_class;
static struct device *kmfdemo_device;

static ssize_t kmfdemo_read(struct file *file, char __user *buf, size_t len,
			    loff_t *pos)
{
	char line[256];
	int n;

	n = scnprintf(line, sizeof(line), "%s %s api=%s symbol=%s kernel=%s\n",
		      KMFDEMO_NAME, KMFDEMO_VERSION, KMFDEMO_API,
		      KMFDEMO_SYMBOL_TEXT, UTS_RELEASE);
	return simple_read_from_buffer(buf, len, pos, line, n);
}

static const struct file_operations kmfdemo_fops = {
	.owner = THIS_MODULE,
	.read = kmfdemo_read,
	.llseek = default_llseek,
};

static struct class *kmfdemo_class_create(void)
{
#if KMFDEMO_CLASS_CREATE_TAKES_OWNER
	return class_create(THIS_MODULE, KMFDEMO_NAME);
#else
	return class_create(KMFDEMO_NAME);
#endif
}

static int __init kmfdemo_init(void)
{
	int err;

	err = alloc_chrdev_region(&kmfdemo_devt, 0, 1, KMFDEMO_NAME);
	if (err)
		return err;

	cdev_init(&kmfdemo_cdev, &kmfdemo_fops);
	kmfdemo_cdev.owner = THIS_MODULE;
	err = cdev_add(&kmfdemo_cdev, kmfdemo_devt, 1);
	if (err)
		goto unregister_region;

	kmfdemo_class = kmfdemo_class_create();
	if (IS_ERR(kmfdemo_class)) {
		err = PTR_ERR(kmfdemo_class);
		goto delete_cdev;
	}

	kmfdemo_device = device_create(kmfdemo_class, NULL, kmfdemo_devt, NULL,
				       KMFDEMO_NAME);
	if (IS_ERR(kmfdemo_device)) {
		err = PTR_ERR(kmfdemo_device);
		goto destroy_class;
	}

	pr_info("%s: loaded, api=%s, symbol=%s\n", KMFDEMO_NAME,
		KMFDEMO_API_SHORT, KMFDEMO_SYMBOL_TEXT);
	return 0;

destroy_class:
	class_destroy(kmfdemo_class);
delete_cdev:
	cdev_del(&kmfdemo_cdev);
unregister_region:
	unregister_chrdev_region(kmfdemo_devt, 1);
	return err;
}

static void __exit kmfdemo_exit(void)
{
	device_destroy(kmfdemo_class, kmfdemo_devt);
	class_destroy(kmfdemo_class);
	cdev_del(&kmfdemo_cdev);
	unregister_chrdev_region(kmfdemo_devt, 1);
	pr_info("%s: unloaded\n", KMFDEMO_NAME);
}

module_init(kmfdemo_init);
module_exit(kmfdemo_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kmodfarm developers");
MODULE_DESCRIPTION("kmodfarm example module: reports how it was built via /dev/kmfdemo");
MODULE_VERSION(KMFDEMO_VERSION);
/* Custom modinfo tags: `modinfo -F kmfdemo_api <ko>` without loading it. */
MODULE_INFO(kmfdemo_api, KMFDEMO_API);
#ifdef KMFDEMO_SYMBOL_ADDR
MODULE_INFO(kmfdemo_symbol, KMFDEMO_SYMBOL_NAME "=0x" KMFDEMO_SYMBOL_ADDR_HEX);
#else
MODULE_INFO(kmfdemo_symbol, "none");
#endif
